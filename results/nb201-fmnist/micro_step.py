import time, resource, torch, sys
from benchmarks.training.nb201_model import build_network
torch.set_num_threads(1)
def cpu(): u=resource.getrusage(resource.RUSAGE_SELF); return u.ru_utime+u.ru_stime
archs = {"max": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
         "mid": "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|nor_conv_3x3~1|none~2|",
         "min": "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"}
for C, size, bs in [(8,16,256),(8,16,64),(4,16,256),(8,8,256),(8,12,256)]:
    for name, a in archs.items():
        net = build_network(a, 10, C=C, N=1, in_channels=1)
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
        x = torch.randn(bs,1,size,size); y = torch.randint(0,10,(bs,))
        for i in range(2):
            opt.zero_grad(); torch.nn.functional.cross_entropy(net(x),y).backward(); opt.step()
        c0=cpu(); w0=time.perf_counter(); n=8
        for i in range(n):
            opt.zero_grad(); torch.nn.functional.cross_entropy(net(x),y).backward(); opt.step()
        c=(cpu()-c0)/n; w=(time.perf_counter()-w0)/n
        with torch.no_grad():
            net.eval(); xe=torch.randn(1024,1,size,size); c1=cpu(); net(xe); ce=cpu()-c1; net.train()
        print(f"C={C} size={size} bs={bs} {name}: train step cpu {c*1000:.1f} ms (wall {w*1000:.1f}); per 1000 imgs train {c/bs*1000:.3f}s eval {ce/1024*1000:.3f}s", flush=True)
