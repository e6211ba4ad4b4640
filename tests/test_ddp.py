"""A real 2-process DDP fit on CPU (gloo): disjoint shards, synced metrics, artefacts written once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mnist_lightning.training.data import MNISTDataModule
from tests.helpers.probes import image_key
from tests.helpers.synthetic import fit_in_subprocess, small_args

REPO = Path(__file__).parents[1]


@pytest.mark.slow
def test_two_process_ddp_fit(data_dir: Path, tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    (tmp_path / "probe.yaml").write_text(
        f"trainer:\n  callbacks: [{{class_path: tests.helpers.probes.RecordSeen, init_args: {{folder: {seen}}}}}]\n"
    )
    args = small_args(
        data_dir, "--config", str(REPO / "configs" / "ddp.yaml"), "--config", str(tmp_path / "probe.yaml")
    )
    proc = fit_in_subprocess(args, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((seen / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]

    # every epoch: equal, disjoint shards that together are exactly the training split
    dm = MNISTDataModule(str(data_dir), val_size=100, verify_md5=False)
    dm.setup()
    train = {image_key(row) for row in dm.splits["train"][0]}
    assert ranks[0]["seen"].keys() == ranks[1]["seen"].keys() == {"0", "1"}
    for epoch in ranks[0]["seen"]:
        a, b = (set(r["seen"][epoch]) for r in ranks)
        assert len(a) == len(b) == len(train) // 2
        assert not a & b
        assert a | b == train

    # epoch metrics are reduced over both ranks (their shards differ, their train/acc does not); the per-step
    # loss is each rank's own
    m0, m1 = (r["metrics"] for r in ranks)
    for key in ("train/acc", "train/loss", "val/acc"):
        assert m0[key] == m1[key], key
    assert m0["train/loss_step"] != m1["train/loss_step"]

    # artefacts: one run folder, one set of checkpoints, one ONNX file, one summary
    runs = list((tmp_path / "lightning_logs").iterdir())
    assert [p.name for p in runs] == ["version_0"]
    files = sorted(str(p.relative_to(runs[0])) for p in runs[0].rglob("*") if p.is_file())
    ckpts = [f for f in files if f.startswith("checkpoints/")]
    assert len(ckpts) == 2 and "checkpoints/last.ckpt" in ckpts and any("best-epoch01" in f for f in ckpts)
    assert files.count("mnist.onnx") == 1 and files.count("config.yaml") == 1
    assert len([f for f in files if f.startswith("events.out.tfevents")]) == 1
    assert not [f for f in files if f.endswith(".tmp")]
    assert proc.stdout.count("Training finished.") == 1
