"""The layout of the package: stage deps that match the imports, no import circle,
Lightning and its friends through their public APIs only."""

from __future__ import annotations

import re

import import_graph as graph
import pytest
import yaml

ROOT = graph.ROOT
STAGE_MODULE = re.compile(r"python -m (vgg_repro\.pipeline\.\w+)")


def _stages() -> dict[str, dict]:
    """Each stage of dvc.yaml (a foreach stage once, by its template) -> cmd and deps."""
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: stage.get("do", stage) for name, stage in spec.items()}


@pytest.mark.parametrize("name", list(_stages()))
def test_stage_deps_are_exactly_the_package_files_its_module_imports(name):
    stage = _stages()[name]
    module = STAGE_MODULE.search(stage["cmd"]).group(1)
    listed = {d for d in stage["deps"] if d.startswith("vgg_repro/") and d.endswith(".py")}
    imported = graph.closure_files(module)
    missing, extra = sorted(imported - listed), sorted(listed - imported)
    assert not missing and not extra, (
        f"dvc.yaml stage {name} ({module}): add {missing}, remove {extra}"
    )
    for dep in stage["deps"]:  # every other dependency is a real path (or a stage output)
        if dep.startswith("vgg_repro/") and "${" not in dep:
            assert (ROOT / dep).is_file(), f"{name}: {dep} does not exist"


def test_training_depends_on_no_evaluation_pipeline_or_report_code():
    """An edit to the fusion, the report or the evaluation retrains no net."""
    train = graph.closure_files("vgg_repro.pipeline.train")
    for path in train:
        assert not path.startswith(("vgg_repro/evaluation/", "vgg_repro/i18n/")), path
        assert path not in (
            "vgg_repro/pipeline/fuse.py",
            "vgg_repro/pipeline/report.py",
            "vgg_repro/pipeline/claims.py",
            "vgg_repro/pipeline/evaluate.py",
            "vgg_repro/paper.py",
        ), path
    for stage in ("fuse", "report", "evaluate"):
        assert f"vgg_repro/pipeline/{stage}.py" not in train


def test_config_deps_of_training_stages_exist():
    for name, stage in _stages().items():
        if name.startswith("train_"):
            configs = [d for d in stage["deps"] if d.startswith("vgg_repro/configs/")]
            assert "vgg_repro/configs/recipe.yaml" in configs, name
            assert "vgg_repro/configs/miniature.yaml" in configs, name


def test_the_import_graph_reads_lazy_imports():
    """A function-level import counts: training imports LightningCLI's module lazily."""
    assert "vgg_repro.training.cli" in graph.imports("vgg_repro.pipeline.train")


def test_no_import_circle_in_the_package():
    assert graph.cycles() == []


def test_the_cycle_finder_finds_a_circle(tmp_path, monkeypatch):
    """The check above can fail: two modules that import each other are found."""
    pkg = tmp_path / "vgg_repro"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from vgg_repro import b\n")
    (pkg / "b.py").write_text("def f():\n    from vgg_repro.a import x\n")
    monkeypatch.setattr(graph, "ROOT", tmp_path)
    assert graph.cycles() == [["vgg_repro.a", "vgg_repro.b", "vgg_repro.a"]]


def test_no_private_api_of_lightning_dvclive_or_jsonargparse():
    private = re.compile(r"_logger_connector|_instantiate_trainer|_getframe|\._trainer\b")
    for path in (ROOT / "vgg_repro").rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not private.search(line), f"{path.relative_to(ROOT)}:{number}: {line.strip()}"


def test_the_copy_data_stages_copy_the_datasets_that_data_pins_yaml_pins():
    """dvc.yaml lists each dataset's source and copy for copy_data; data/pins.yaml lists
    them with their hash for check_data and pin-data: the two must name the same."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    pins = yaml.safe_load((ROOT / "data" / "pins.yaml").read_text())["pins"]
    copied = stages["copy_data"]["foreach"]
    assert copied == {name: {"source": p["source"], "copy": p["copy"]} for name, p in pins.items()}
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["profiles"]["miniature"]
    assert {params["data"], params["transfer"]["data"]} <= {p["copy"] for p in pins.values()}
