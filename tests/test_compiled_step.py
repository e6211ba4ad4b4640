"""``--model.compile true`` (configs/speed.yaml): the compiled step trains the eager net to float rounding, resumes
bitwise after SIGKILL, works with every precision but 16-mixed and with ``tune``, and refuses the rest in one
paragraph."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mnist_lightning.commands import main
from mnist_lightning.common.errors import UserError
from mnist_lightning.model.compiled_step import VAL_ACC_TOL, WEIGHTS_ATOL, CompiledStep
from mnist_lightning.model.net import MyMNIST
from tests.helpers.synthetic import make_mnist, small_args
from tests.test_steps_per_call import ENV, assert_same_training, last, run_folder, scalars

CONFIGS = Path(__file__).parents[1] / "configs"
SPEED = ("--config", str(CONFIGS / "speed.yaml"))


@pytest.fixture(scope="module")
def epoch_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2,500 training images: one epoch of base.yaml's batch 128 is 19 full batches and one of 68."""
    return make_mnist(tmp_path_factory.mktemp("data"), n_train=3000, n_test=200)


def base_epoch(data_dir: Path, root: Path, *extra: str) -> list[str]:
    """One epoch of configs/base.yaml (batch 128) on ``data_dir``, into ``root``."""
    args = small_args(data_dir, "--trainer.default_root_dir", str(root), "--export.enabled", "false")
    args += ["--data.batch_size", "128", "--data.val_size", "500", "--trainer.max_epochs", "1"]
    return ["fit", *args, *extra]


def val_acc(root: Path) -> float:
    return float(scalars(root)["val/acc"][-1][1])


def test_speed_yaml_trains_the_eager_net_to_float_rounding(epoch_data: Path, tmp_path: Path, capsys) -> None:
    assert main(base_epoch(epoch_data, tmp_path / "eager")) == 0
    assert main(base_epoch(epoch_data, tmp_path / "speed", *SPEED)) == 0
    assert "compiled step   : built in" in capsys.readouterr().out
    assert main(base_epoch(epoch_data, tmp_path / "k1", "--model.compile", "true")) == 0
    eager, speed = last(tmp_path / "eager"), last(tmp_path / "speed")
    assert speed["global_step"] == eager["global_step"] == 20
    differs = False
    for key, value in eager["state_dict"].items():
        torch.testing.assert_close(speed["state_dict"][key], value, rtol=0, atol=WEIGHTS_ATOL)
        differs |= not torch.equal(speed["state_dict"][key], value)
    assert differs  # the compiled kernels did run (the eager step would be bitwise equal)
    assert abs(val_acc(tmp_path / "speed") - val_acc(tmp_path / "eager")) <= VAL_ACC_TOL
    # the Adam state is torch's own, in its own format: what a resume of either kind reads
    for param, state in eager["optimizer_states"][0]["state"].items():
        got = speed["optimizer_states"][0]["state"][param]
        assert got.keys() == state.keys() and got["step"] == state["step"]
        torch.testing.assert_close(got["exp_avg"], state["exp_avg"], rtol=0, atol=WEIGHTS_ATOL)
    # K = 8 runs the same compiled step as K = 1: the weights are bitwise those of the compiled K = 1 run
    assert_same_training(last(tmp_path / "speed"), last(tmp_path / "k1"))
    assert scalars(tmp_path / "speed") == scalars(tmp_path / "k1")


@pytest.mark.parametrize("precision", ["32-true", "64-true", "bf16-mixed", "bf16-true"])
def test_every_precision_but_16_mixed_trains_compiled(data_dir: Path, tmp_path: Path, precision: str) -> None:
    args = small_args(data_dir, "--trainer.default_root_dir", str(tmp_path), "--trainer.precision", precision)
    assert main(["fit", *args, *SPEED, "--trainer.max_epochs", "1"]) == 0
    ckpt = last(tmp_path)
    weights = ckpt["state_dict"]["net.layers.0.weight"]
    assert torch.isfinite(weights.float()).all() and ckpt["global_step"] == 10
    assert (run_folder(tmp_path) / "mnist.onnx").is_file()


def test_sigkill_mid_epoch_and_resume_is_bitwise_the_uninterrupted_compiled_run(data_dir: Path, tmp_path: Path) -> None:
    # batch 25: 20 steps an epoch, a multiple of K = 4, so that checkpoints every 8 steps fall between calls
    extra = ("--data.batch_size", "25", "--resume.every_n_train_steps", "8", "--export.enabled", "false")
    k = ("--model.steps_per_call", "4")
    whole = small_args(data_dir, "--trainer.default_root_dir", str(tmp_path / "whole"), *extra)
    assert main(["fit", *whole, *SPEED, *k]) == 0
    (tmp_path / "kill.yaml").write_text(
        "trainer:\n  callbacks: [{class_path: tests.helpers.faults.SignalAt, init_args: {step: 28}}]\n"
    )
    root = tmp_path / "killed"
    args = small_args(data_dir, "--trainer.default_root_dir", str(root), *extra)
    cmd = [sys.executable, "-m", "mnist_lightning", "fit", *args, *SPEED, *k, "--config", str(tmp_path / "kill.yaml")]
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert last(root)["global_step"] == 24  # killed in epoch 1 at step 28: steps 25-28 are replayed
    assert main(["fit", *args, *SPEED, *k, "--ckpt_path", "last"]) == 0
    assert_same_training(last(root), last(tmp_path / "whole"))
    got, want = scalars(root), scalars(tmp_path / "whole")
    for tag in ("train/loss", "train/acc", "val/acc", "val/loss"):  # (the killed run logged steps 25-28 once)
        assert got[tag] == want[tag], tag


def test_tune_trials_compile_each_their_own_step(data_dir: Path, tmp_path: Path) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(
        "fixed: {trainer.max_epochs: 1}\n"
        "params:\n  model.lr: {type: float, low: 0.0001, high: 0.01, log: true}\n"
        "  data.batch_size: {type: choice, choices: [25, 50]}\n"
    )
    args = small_args(data_dir, "--trainer.default_root_dir", str(tmp_path), "--trainer.enable_model_summary", "false")
    tune = ["tune", *args, *SPEED, "--tune.space", str(space), "--tune.n_trials", "2", "--tune.study_name", "s"]
    assert main(tune) == 0
    for trial in ("trial_0000", "trial_0001"):
        run = tmp_path / "lightning_logs" / "s" / trial
        assert (run / "mnist.onnx").is_file() and list((run / "checkpoints").glob("best-*.ckpt"))


@pytest.mark.parametrize(
    ("flag", "value", "named"),
    [
        ("--trainer.precision", "16-mixed", "trainer.precision 16-mixed"),
        ("--trainer.accumulate_grad_batches", "2", "trainer.accumulate_grad_batches"),
        ("--trainer.gradient_clip_val", "1.0", "trainer.gradient_clip_val"),
        ("--config", str(CONFIGS / "ddp.yaml"), "trainer.strategy ddp / devices 2"),
        ("--trainer.devices", "2", "devices 2"),
    ],
)
def test_what_compile_cannot_run_with_is_refused_in_one_paragraph(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture, flag: str, value: str, named: str
) -> None:
    args = small_args(data_dir, "--trainer.default_root_dir", str(tmp_path))
    # --model.compile alone (K = 1): the K > 1 refusals do not hide these
    assert main(["fit", *args, "--model.compile", "true", flag, value]) == 2
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]  # one paragraph
    assert named in line and "model.compile true" in line and "drop --model.compile" in line
    assert not (tmp_path / "lightning_logs").exists()


def test_no_cpp_compiler_is_refused_before_anything_is_written(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CXX", "no-such-c++-compiler")
    assert main(["fit", *small_args(data_dir, "--trainer.default_root_dir", str(tmp_path)), *SPEED]) == 2
    err = capsys.readouterr().err
    assert "no C++ compiler 'no-such-c++-compiler'" in err and "apt-get install g++" in err
    assert not (tmp_path / "lightning_logs").exists()


def test_a_compiler_that_fails_is_one_paragraph_not_a_traceback(data_dir: Path, tmp_path: Path) -> None:
    # /bin/false is on the PATH but compiles nothing: the failure comes from inside torch.compile's first call
    args = small_args(data_dir, "--trainer.default_root_dir", str(tmp_path), "--export.enabled", "false", *SPEED)
    env = {**ENV, "CXX": "/bin/false", "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor")}
    proc = subprocess.run(
        [sys.executable, "-m", "mnist_lightning", "fit", *args], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "torch.compile could not build the training step" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("recipe", ["best", "fast"])
def test_the_other_recipes_layer_speed_yaml_and_train_the_eager_net(epoch_data: Path, tmp_path: Path, recipe: str):
    # best: AdamW, OneCycle (LR and momentum change every step), augmentation (eager, the same random stream);
    # fast: label smoothing
    runs = {}
    for name, extra in (("eager", ()), ("speed", SPEED)):
        args = base_epoch(epoch_data, tmp_path / name, *extra)
        args[args.index("--config") + 1] = str(CONFIGS / f"{recipe}.yaml")
        assert main([*args, "--trainer.max_epochs", "2"]) == 0
        runs[name] = last(tmp_path / name)
    for key, value in runs["eager"]["state_dict"].items():
        torch.testing.assert_close(runs["speed"]["state_dict"][key], value, rtol=0, atol=WEIGHTS_ATOL)
    assert runs["speed"]["lr_schedulers"] == runs["eager"]["lr_schedulers"]


def test_dropout_trains_inside_the_compiled_step(data_dir: Path, tmp_path: Path) -> None:
    # dropout draws its masks inside the graph, from torch.compile's own generator: trained, not compared bitwise
    args = small_args(data_dir, "--trainer.default_root_dir", str(tmp_path), "--model.dropout", "0.2", *SPEED)
    assert main(["fit", *args]) == 0
    assert val_acc(tmp_path) > 0.5 and last(tmp_path)["global_step"] == 20


def test_a_schedule_feeds_the_one_graph_and_a_changed_constant_is_refused() -> None:
    # lr and beta1 change every step under onecycle: inputs of the graph. Anything else that changes would rebuild
    # it (a silent slowdown, then eager after torch's recompile limit): refused in one paragraph instead
    torch.manual_seed(0)
    net = MyMNIST([16])
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.01)
    images, labels = torch.rand(8, 784), torch.randint(0, 10, (8,))
    torch.nn.functional.cross_entropy(net(images), labels).backward()
    opt.step()
    step, sums = CompiledStep(net, opt, 0.0), torch.zeros(3)
    for i in range(12):  # more new values than torch's recompile limit (8)
        opt.param_groups[0]["lr"], opt.param_groups[0]["betas"] = 1e-3 * (1 + i), (0.95 - i / 100, 0.999)
        step(images, labels, sums)
    assert sums[2].item() == 12 * 8
    opt.param_groups[0]["weight_decay"] = 0.5
    with pytest.raises(UserError, match="would have to be rebuilt.*weight_decay"):
        step(images, labels, sums)


def test_the_compiled_step_is_torch_adam_step_for_step_also_after_an_eager_step() -> None:
    # the bias corrections come from a step count kept on the host: an eager step (an epoch's smaller last batch)
    # advances torch's count, which the next compiled step must read back; off by one shows within a few steps
    torch.manual_seed(0)
    nets = [MyMNIST([16]), MyMNIST([16])]
    nets[1].load_state_dict(nets[0].state_dict())
    opts = [torch.optim.Adam(net.parameters(), lr=1e-2) for net in nets]
    batches = [(torch.rand(n, 784), torch.randint(0, 10, (n,))) for n in (8, 8, 8, 8, 5, 8, 8)]
    compiled, sums = None, torch.zeros(3)
    for i, (images, labels) in enumerate(batches):
        for j, (net, opt) in enumerate(zip(nets, opts, strict=True)):
            if j == 1 and i > 0 and (compiled := compiled or CompiledStep(net, opt, 0.0)).fits(images):
                compiled(images, labels, sums)
                continue
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(images), labels).backward()
            opt.step()
        for eager, fused in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
            torch.testing.assert_close(fused.detach(), eager.detach(), rtol=0, atol=1e-5)  # lr 1e-2: rounding
    assert sums[2].item() == 5 * 8  # steps 2-4 and 6-7 compiled, 1 and 5 eager
    assert all(s["step"].item() == len(batches) for s in opts[1].state.values())
