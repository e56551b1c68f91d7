"""The reference for `cargo bench -p metrics --bench metrics`: pytorch-fid's Inception
network on PyTorch's CPU backend, images/s at 32×32 input, batch 50, on 2 threads.

    python crates/metrics/benches/pytorch_fid_speed.py [WEIGHTS]

WEIGHTS defaults to the fixture file our benchmark loads (random values in the layout of
pt_inception-2015-12-05-6726825d.pth; speed does not depend on the values), handed to
pytorch-fid in place of its download. Needs torch and pytorch-fid (pip install
pytorch-fid).
"""

import os
import sys
import time

import torch
import pytorch_fid.inception as inception

fixtures = os.environ.get(
    "PIPE_FIXTURES", os.path.join(os.path.dirname(__file__), "../../../../shared/fixtures")
)
weights = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    fixtures, "fid-inception/pt_inception-random-1234.pth"
)
state = torch.load(weights, map_location="cpu")
inception.load_state_dict_from_url = lambda *args, **kwargs: state

torch.set_num_threads(2)
net = inception.InceptionV3([inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
batch = torch.rand(50, 3, 32, 32)
with torch.no_grad():
    net(batch[:2])
    for _ in range(3):
        start = time.time()
        net(batch)
        rate = len(batch) / (time.time() - start)
        print(f"pytorch-fid on PyTorch {torch.__version__} CPU, 32×32 input, batch 50: {rate:.1f} images/s")
