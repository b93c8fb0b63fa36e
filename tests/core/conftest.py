"""The dummy implementations package shared by the runner tests: x2_descent/numpy.py misbehaves according
to its variant (crash, hang, NaN, SIGKILL, exit code, an exploding loss, a memory hog, busy steps, ...), and the
real runner runs it as a subprocess per cell."""
import textwrap

import pytest

from harness.matrix import registry

DUMMY = textwrap.dedent('''
    import os, signal, time
    from pathlib import Path
    VARIANTS = {"ok": "", "crash": "", "hang": "", "nan": "", "sigkill": "", "exit": "", "explode": "",
                "hog": "", "busy": "", "sabotage": "", "slowhang": "", "threaded": "", "flaky": ""}

    def busy_step(n=60000):  # a fixed amount of pure-Python work: its time depends only on the CPU it gets
        total = 0
        for i in range(n):
            total += i * i
        return total

    def train(spec, rec):
        if spec.variant == "crash":
            raise ValueError("boom\\nsecond line")
        if spec.variant == "hang":
            time.sleep(600)
        if spec.variant == "slowhang":  # steps for a while, then hangs (interrupt tests)
            rec.step(1.0)
            Path(os.environ["DLROSETTA_CELL_DIR"], "started").write_text(str(os.getpid()))
            time.sleep(600)
        if spec.variant == "flaky":  # the first try hangs (its worker is killed by the test), a retry finishes
            marker = Path(os.environ["DLROSETTA_CELL_DIR"], "first-try")
            if not marker.exists():
                marker.write_text(str(os.getpid()))
                time.sleep(600)
        if spec.variant == "nan":
            rec.step(1.0)
            rec.step(float("nan"))
        if spec.variant == "explode":  # the loss grows 10x a step: diverged once past 1e3x the start
            for k in range(spec.steps):
                rec.step(10.0 ** k)
        if spec.variant == "sigkill":
            rec.step(1.0)
            os.kill(os.getpid(), signal.SIGKILL)
        if spec.variant == "exit":
            os._exit(3)
        if spec.variant == "hog":  # allocates and touches 64 MB a step until something stops it
            keep = []
            for _ in range(200):
                keep.append(bytearray(64 * 2**20))
                rec.step(1.0)
        if spec.variant == "busy":
            for _ in range(spec.steps):
                busy_step()
                rec.step(1.0)
        if spec.variant == "threaded":  # two threads of numpy matmuls (the GIL released): two cores' work
            import threading
            import numpy as np
            a = np.ones((400, 400), np.float32)
            def work():
                for _ in range(25):
                    a @ a
            for _ in range(spec.steps):
                threads = [threading.Thread(target=work) for _ in range(2)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                rec.step(1.0)
        if spec.variant == "sabotage":  # the run's results file becomes a full disk under the parent's feet
            results = Path(os.environ["DLROSETTA_CELL_DIR"]).parent.parent / "results.jsonl"
            results.unlink()
            results.symlink_to("/dev/full")
        xs = [spec.x0 * (1 - 2 * spec.lr) ** k for k in range(spec.steps + 1)]
        if spec.variant in ("busy", "threaded"):  # their steps are the work above; the answer is exact
            return xs
        for x in xs[1:]:
            rec.step(x)
        return xs
''')


@pytest.fixture
def impl_package(tmp_path, monkeypatch):
    """impl_package(package, task, source) -> tmp_path: a package of implementations with one file,
    <package>/<task>/numpy.py, that the runner's cells import (DLROSETTA_IMPL_PACKAGE); the registry's caches
    are cleared around it."""
    def install(package: str, task: str, source: str):
        root = tmp_path / "pkgs"
        pkg = root / package / task
        pkg.mkdir(parents=True)
        (root / package / "__init__.py").write_text("")
        (pkg / "__init__.py").write_text("")
        (pkg / "numpy.py").write_text(source)
        monkeypatch.syspath_prepend(str(root))
        monkeypatch.setenv("PYTHONPATH", str(root))
        monkeypatch.setenv("DLROSETTA_IMPL_PACKAGE", package)
        for fn in (registry.impl_path, registry.variants):
            fn.cache_clear()
        return tmp_path

    yield install
    for fn in (registry.impl_path, registry.variants):
        fn.cache_clear()


@pytest.fixture
def dummy_impls(impl_package):
    return impl_package("dummy_impls", "x2_descent", DUMMY)
