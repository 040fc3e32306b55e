"""Every shell command of the README runs as written (issue 25).

Every line of the README's ```bash blocks is in one of two tables here: ``RUN``, the
command-line examples, which run in order in one working folder (so the ``runs/nb`` one line
writes is the folder the next ones read), or ``NOT_RUN``, with the reason. A README line that
neither table knows fails, and so does an entry whose command the README no longer has: a new
command is never left untested by accident.

Each command runs in-process through the entry point of ``[project.scripts]``
(``noether_ppl.cli:main``) with the README's own arguments, ``shlex``-split; only sizes are
changed: an argument the README gives is replaced (``REPLACE``) or size settings are appended
(``--set data.train.n_trajectories=4``, ``--steps 5``, ...). Then its exit status must be 0 and
the files it promises must be there.

The demo can be made cheaper from the command line only by its number of steps (``--steps``):
its network, symmetry samples, sub-steps and data sizes are fixed (``DemoSettings``), so each
demo line compiles and analyses the full CPU-scale models — the slow part of this file.
"""

import json
import os
import pathlib
import re
import shlex
import time

import numpy as np
import pytest

from noether_ppl.cli import main

README = pathlib.Path(__file__).parent.parent / "README.md"

# ------------------------------------------------------------------------------ sizes
# Every data set the same tiny shape (one compiled simulator per system), a one-layer network,
# a few steps and a small analysis: the settings of tests/test_cli.py's `tiny`.
MODEL = ["model.hidden=[8]", "model.sym_samples=2", "model.substeps=1"]
STEPS = ["inference.num_steps=4", "inference.checkpoint_every=2"]
ANALYSIS = ["analysis.arviz_samples=6", "analysis.num_samples=2", "analysis.num_repeats=1",
            "analysis.rollout_steps=2", "analysis.rollout_trajectories=2"]
TEST_SETS = {"sho-cpu": ["test"], "oscillators3-cpu": ["test"],
             "nbody2d3-cpu": ["test", "moved", "wider"]}


def sets(*items: str) -> list[str]:
    return [x for item in items for x in ("--set", item)]


# Training states: at least as many as `discover` needs, the number of quadratic observables
# on the phase space (and linear ones): 27 on R^6 (oscillators3), 90 on R^12 (nbody2d3).
TRAIN = {"sho-cpu": (4, 2), "oscillators3-cpu": (10, 4), "nbody2d3-cpu": (10, 10)}


def data_sizes(name: str, *, train: bool = True) -> list[str]:
    sizes = {s: (4, 2) for s in TEST_SETS[name]}
    if train:
        sizes["train"] = TRAIN[name]
    return [f"data.{s}.n_trajectories={n}" for s, (n, _) in sizes.items()] + [
        f"data.{s}.n_steps={t}" for s, (_, t) in sizes.items()]


def tiny(name: str, *, steps: bool = True, train: bool = True) -> list[str]:
    """``--set`` arguments that shrink a packaged experiment (``steps=False``: the README
    line sets ``inference.num_steps`` itself; ``train=False``: the training data are a file)."""
    batch = [] if name == "sho-cpu" else ["inference.batch_size=2"]
    return sets(*MODEL, *(STEPS if steps else STEPS[1:]), *batch, *data_sizes(name, train=train),
                *ANALYSIS)


DEMO = ["--steps", "5"]  # the demo's only size on the command line

# (README command, without its comment; {README argument: what runs instead}; appended)
RUN = [
    ("noether-ppl demo", {}, DEMO),
    ("noether-ppl demo --restarts 2", {}, DEMO),
    ("noether-ppl demo --no-refit", {}, DEMO),
    ("noether-ppl fit sho-cpu --out runs/sho", {}, tiny("sho-cpu")),
    ("noether-ppl fit nbody2d3-cpu --variant vanilla --variant learned "
     "--set inference.num_steps=500 --out runs/nb",
     {"inference.num_steps=500": "inference.num_steps=4"}, tiny("nbody2d3-cpu", steps=False)),
    # the run is complete: "nothing to do" (a changed setting would be refused)
    ("noether-ppl fit --resume runs/nb", {}, []),
    ("noether-ppl fit sho-cpu --data mine.npy --dt 0.1 --out runs/mine", {},
     tiny("sho-cpu", train=False)),
    ("noether-ppl report runs/sho runs/nb --markdown", {}, []),
    # --dimension 10: at most K = 10 (model.n_conserved of nbody2d3-cpu) directions, which the
    # next line's --init-conserved needs (the largest gap of a 500-step HNN's spectrum kept 88)
    ("noether-ppl discover runs/nb --dimension 10", {}, []),
    ("noether-ppl fit nbody2d3-cpu --variant learned --init-conserved "
     "runs/nb/vanilla/discovery.json --out runs/nb-warm", {}, tiny("nbody2d3-cpu")),
    # K = 2 (of 12): --auto removes conserved quantities one continuation fit at a time, each
    # compiled anew (14 min from K = 12 at these sizes on a loaded 2-core machine)
    ("noether-ppl fit oscillators3-cpu --variant learned --auto --out runs/osc", {},
     tiny("oscillators3-cpu") + sets("model.n_conserved=2")),
    ("noether-ppl simulate oscillators --n 3 --out data/", {},
     ["--trajectories", "4", "--steps", "2"]),
]

# (README command, why the test does not run it)
NOT_RUN = [
    ("pip install -e . && noether-ppl demo",
     "installs the package (the test runs inside it); its demo is RUN's first line"),
    ("pip install -e '.[test]' && pytest", "installs the test extras and runs this suite"),
    ("pip install -e '.[test,dev]'", "installs the test and development extras"),
    ("pytest", "runs this suite"),
    ("pytest -m slow", "runs this suite's slow tests"),
    ("ruff check .", "the linter: its own check, not the package's"),
    ("python benchmarks/step_time.py",
     "a benchmark: measures at its own sizes and writes benchmarks/records/ in the repository"),
    ("python benchmarks/time_to_quality.py",
     "a benchmark: trains to a target quality and writes benchmarks/records/ in the repository"),
    ("python benchmarks/compile_reuse.py",
     "a benchmark: fits in fresh processes and writes benchmarks/records/ in the repository"),
]


def words(command: str) -> list[str]:
    return shlex.split(command, comments=True)


def readme_shell_lines() -> list[tuple[int, str]]:
    """``(block, line)`` for every command of every ```bash block (continuations joined)."""
    out = []
    for i, block in enumerate(re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)):
        for line in block.replace("\\\n", " ").splitlines():
            if words(line):
                out.append((i, line))
    return out


def cli_block() -> list[str]:
    """The lines of the block of `noether-ppl` commands, in README order."""
    lines = readme_shell_lines()
    blocks = {i for i, line in lines if words(line)[0] == "noether-ppl"}
    assert len(blocks) == 1, f"expected one ```bash block of noether-ppl commands, got {blocks}"
    return [line for i, line in lines if i in blocks]


def test_every_readme_shell_line_is_run_or_excused():
    lines = readme_shell_lines()
    known = [words(c) for c, *_ in RUN] + [words(c) for c, _ in NOT_RUN]
    unknown = [line for _, line in lines if words(line) not in known]
    assert not unknown, f"README shell lines this test neither runs nor excuses: {unknown}"
    have = [words(line) for _, line in lines]
    stale = [c for c, *_ in RUN + NOT_RUN if words(c) not in have]
    assert not stale, f"commands of this test that the README no longer has: {stale}"
    # the command-line block runs in the README's order, every line once
    assert [words(line) for line in cli_block()] == [words(c) for c, *_ in RUN]
    for command, replace, _ in RUN:  # a replaced size the README no longer has
        for text in replace:
            assert text in words(command), f"{command!r} has no {text!r} to replace"


def as_run(command: str, replace: dict, extra: list[str]) -> list[str]:
    argv = [replace.get(w, w) for w in words(command)] + extra
    assert argv[0] == "noether-ppl"
    return argv[1:]


def write_mine_npy(path: str, dt: float) -> None:
    """The README's own trajectories, ``mine.npy`` ``(N, T+1, M)`` with time step ``--dt``:
    here four short oscillator trajectories simulated by the package."""
    import jax

    from noether_ppl import systems

    data = systems.HarmonicOscillator().simulate(jax.random.key(1), n_trajectories=4,
                                                 n_steps=2, dt=dt)
    np.save(path, np.asarray(data.states))


def read_json(*parts: str) -> dict:
    with open(os.path.join(*parts)) as f:
        return json.load(f)


def assert_run_folder(folder: str) -> None:
    """What the README says a run folder holds (a fit's, analysed)."""
    info = read_json(folder, "run.json")
    assert info["status"] == "complete", (folder, info["status"])
    for name in ("metrics.json", "params.npz", "posterior.nc"):
        assert os.path.isfile(os.path.join(folder, name)), (folder, name)


def assert_experiment(folder: str, variants: list[str]) -> None:
    for v in variants:
        assert_run_folder(os.path.join(folder, v))


def check_promises(command: str) -> None:
    """The files each README command promises, in the working folder."""
    if command.startswith("noether-ppl demo"):
        metrics = read_json("runs/demo/metrics.json")
        for name in ("hamiltonians.png", "training_curves.png"):
            assert os.path.getsize(os.path.join("runs/demo", name)) > 0
        for name in ("vanilla", "learned", "oracle"):
            assert_run_folder(os.path.join("runs/demo", name))
        if "--restarts 2" in command:
            assert metrics["settings"]["restarts"] == 2
            assert all(len(metrics[n]["restarts"]) == 2 for n in ("vanilla", "learned"))
        if "--no-refit" in command:
            assert metrics["settings"]["refit"] is False and "refit" not in metrics["learned"]
        else:
            assert "refit" in metrics["learned"]
    elif command == "noether-ppl fit sho-cpu --out runs/sho":
        assert_experiment("runs/sho", ["vanilla", "learned", "learned-refit", "so2"])
    elif command.endswith("--out runs/nb") or command == "noether-ppl fit --resume runs/nb":
        assert_experiment("runs/nb", ["vanilla", "learned"])
        assert not os.path.exists("runs/nb/se2")  # only the variants asked for
    elif command.endswith("--out runs/mine"):
        # the fixed SO(2) needs the simulated system's ground truth: not fitted on user data
        assert_experiment("runs/mine", ["vanilla", "learned", "learned-refit"])
    elif command.startswith("noether-ppl discover"):
        for v in ("vanilla", "learned"):
            assert len(read_json("runs/nb", v, "discovery.json")["generators"]) == 10
    elif command.endswith("--out runs/nb-warm"):
        assert_experiment("runs/nb-warm", ["learned"])
    elif command.endswith("--out runs/osc"):
        # --auto: the plain HNN too, then only the conserved quantities (learned-selected)
        assert_experiment("runs/osc", ["vanilla", "learned", "learned-selected"])
    elif command.startswith("noether-ppl simulate"):
        assert os.path.getsize("data/trajectories.npz") > 0
    else:
        assert command.startswith("noether-ppl report"), command


@pytest.mark.slow  # the three demo lines take minutes: the demo's model sizes are fixed
def test_readme_commands_run_in_order(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    # `--data mine.npy` is the user's own file; the test simulates one with the package
    write_mine_npy("mine.npy", dt=0.1)
    assert [words(line) for line in cli_block()] == [words(c) for c, *_ in RUN]
    times = []
    for command, replace, extra in RUN:
        argv = as_run(command, replace, extra)
        t0 = time.perf_counter()
        code = main(argv)
        out, err = capsys.readouterr()
        times.append((round(time.perf_counter() - t0, 1), command))
        assert code == 0, f"{command!r} (run as {argv}) exited {code}: {err.strip()}"
        if command == "noether-ppl report runs/sho runs/nb --markdown":
            assert "|" in out
        check_promises(command)
    with capsys.disabled():
        print("\n".join(f"{t:7.1f} s  {c}" for t, c in times))
