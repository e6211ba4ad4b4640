"""``python -m mnist_lightning.common.inspect_run lightning_logs/version_0``: what a run's TensorBoard files hold.

Reads the event files with TensorBoard's own reader and prints, per tab, the tags with how many points or
images each has, and the HPARAMS row (params and metric values). No browser needed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mnist_lightning.common.errors import EXIT_USER_ERROR, UserError, report_error
from mnist_lightning.common.layout import EVENTS_GLOB


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """``{"scalars": {tag: [values]}, "images": {tag: [(step, w, h)]}, "hparams": {..}, "hp_metrics": [..]}``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    run_dir = Path(run_dir)
    if not any(run_dir.glob(EVENTS_GLOB)):
        raise UserError(
            f"{run_dir} holds no TensorBoard event files; pass a run folder such as lightning_logs/version_0"
        )
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    tags = events.Tags()
    out: dict[str, Any] = {
        "scalars": {t: [e.value for e in events.Scalars(t)] for t in sorted(tags["scalars"])},
        "images": {t: [(e.step, e.width, e.height) for e in events.Images(t)] for t in sorted(tags["images"])},
        "hparams": {},
        "hp_metrics": [],
    }
    try:
        contents = events.PluginTagToContent("hparams")
    except KeyError:
        contents = {}
    for content in contents.values():
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        if data.HasField("session_start_info"):
            for key, value in data.session_start_info.hparams.items():
                kind = value.WhichOneof("kind")
                out["hparams"][key] = getattr(value, kind) if kind else None
        if data.HasField("experiment"):
            out["hp_metrics"] = [m.name.tag for m in data.experiment.metric_infos]
    return out


def describe(run_dir: str | Path) -> str:
    run = read_run(run_dir)
    lines = [f"{run_dir}", "SCALARS (tag: points, last value)"]
    lines += [f"  {t}: {len(v)}, {v[-1]:.4g}" for t, v in run["scalars"].items()]
    lines.append("IMAGES (tag: images, size of the last)")
    lines += [f"  {t}: {len(v)}, {v[-1][1]}x{v[-1][2]}" for t, v in run["images"].items()]
    lines.append("HPARAMS (params, then metric columns with this run's value)")
    lines += [f"  {k} = {v}" for k, v in sorted(run["hparams"].items())]
    for tag in run["hp_metrics"]:
        values = run["scalars"].get(tag)
        lines.append(f"  [{tag}] = {values[-1]:.4f}" if values else f"  [{tag}] = (not logged yet)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m mnist_lightning.common.inspect_run RUN_DIR...", file=sys.stderr)
        return EXIT_USER_ERROR
    try:
        print("\n\n".join(describe(a) for a in args))
    except UserError as err:
        return report_error(err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
