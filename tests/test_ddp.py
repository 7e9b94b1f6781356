"""Two processes with DistributedDataParallel (gloo, CPU) and batch B train exactly like one
process with batch 2B: same samples, same masks and local boxes, gradients averaged.

The two ranks are started the way ``torchrun`` starts them: environment variables RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR=127.0.0.1, MASTER_PORT (a free port), ``env://`` init.
"""

import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.distributed as dist

from pconv_torch.training import load_checkpoint, load_config, train

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")

CONFIG = dict(image_size=32, width=0.125, d_width=0.25, phase1_iters=2, phase2_iters=2,
              phase3_iters=2, lr_g=1e-3, lr_d=1e-3, log_every=1, sample_every=1000,
              checkpoint_every=1000, tensorboard=False)

WORKER = textwrap.dedent("""
    import sys, torch
    torch.set_num_threads(1)
    from pconv_torch.training import load_config, train
    cfg = load_config("ci", batch_size=2, **{config!r})
    images = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    r = train(cfg, data=images, out_dir=sys.argv[1], progress=False, device="cpu")
    assert r["world_size"] == 2 and r["status"] == "finished", r
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # two processes each importing torch and training: ~7-10 s on two cores
def test_two_ranks_equal_one_process_with_twice_the_batch(tmp_path):
    port = free_port()
    procs = []
    try:
        for rank in range(2):
            env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2",
                       LOCAL_WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                       GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
            procs.append(subprocess.Popen(
                [sys.executable, "-c", WORKER.format(config=CONFIG), str(tmp_path / "ddp")],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        outs = [p.communicate(timeout=120)[0] for p in procs]
    finally:
        for p in procs:  # stop whatever is still running (only the processes started here)
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]

    cfg = load_config("ci", batch_size=4, **CONFIG)
    images = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    r = train(cfg, data=images, out_dir=tmp_path / "single", progress=False, device="cpu")
    assert r["world_size"] == 1
    ddp, single = load_checkpoint(tmp_path / "ddp"), load_checkpoint(tmp_path / "single")
    assert ddp["world_size"] == 2 and ddp["step"] == single["step"] == 6
    # Gradients agree to float rounding (the all-reduce sums in another order). Adam divides
    # by sqrt(v) + 1e-8, so for a weight whose gradient is ~1e-8 that rounding shows up as a
    # small fraction of one step (lr = 1e-3): measured up to 2e-6 here. atol = 1% of a step.
    for net in ("generator", "discriminator"):
        for k, v in single[net].items():
            torch.testing.assert_close(ddp[net][k], v, rtol=1e-5, atol=1e-5,
                                       msg=lambda m, net=net, k=k: f"{net}.{k}: {m}")
    # and the weights did move: the comparison is not between two initialisations
    start = train(load_config("ci", batch_size=4, **dict(CONFIG, phase1_iters=0,
                                                            phase2_iters=0, phase3_iters=0)),
                  data=images, out_dir=tmp_path / "init", progress=False, device="cpu")
    init = load_checkpoint(start["checkpoint"])
    assert any(not torch.allclose(init["generator"][k], single["generator"][k])
               for k in init["generator"] if k != "fill")
