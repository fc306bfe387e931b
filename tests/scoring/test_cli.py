import json

import click
import pytest
from click.testing import CliRunner

from engine.db import Base, get_engine
from scoring.cli import model_group, score_cmd
from scoring.models import Entity, ModelVersion


@pytest.fixture()
def cli(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("REGFLOW_DATABASE_URL", url)
    Base.metadata.create_all(get_engine(url), tables=[ModelVersion.__table__, Entity.__table__])

    @click.group()
    def main():
        pass

    main.add_command(model_group)
    main.add_command(score_cmd)
    runner = CliRunner()
    yield lambda *args: runner.invoke(main, list(args), catch_exceptions=False)
    get_engine(url).dispose()


def test_train_list_score_report(cli, tmp_path):
    res = cli("model", "train", "--entities", "20000", "--seed", "3", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    for key in ("auc", "bayes_auc", "base_rate", "precision_at_k", "oracle_precision_at_k",
                "visits_avoided_per_100", "brier", "class_shares", "class_shares_after_overrides",
                "observed_rate_by_class", "model_version", "precision_at_k_ci95"):
        assert key in out
    assert out["activated"] and out["entities_loaded"] == 20000 and out["synthetic"]
    version = out["model_version"]

    res = cli("model", "list", "--json")
    assert json.loads(res.output)[0]["version"] == version

    res = cli("score", "12", "--json")
    assert res.exit_code == 0, res.output
    one = json.loads(res.output)
    assert one["risk_class"] in "ABCD" and one["model_version"] == version

    res = cli("score", "--all", "--json")
    assert res.exit_code == 0 and json.loads(res.output)["n_scored"] == 20000

    page = tmp_path / "report.html"
    res = cli("model", "report", "--out", str(page))
    assert res.exit_code == 0, res.output
    text = page.read_text(encoding="utf-8")
    assert text.count("<svg") >= 5 and "Bayes-optimal" in text and "SYNTHETIC" in text
    assert "<script" not in text and 'src="http' not in text and 'href="http' not in text  # self-contained

    res = cli("model", "report", "--json")
    assert json.loads(res.output)["model_version"] == version
    assert cli("model", "activate", version).exit_code == 0


def test_exit_codes(cli):
    assert cli("score", "1").exit_code == 3  # no active model
    assert cli("model", "activate", "rm-000000000000").exit_code == 3
    assert cli("score").exit_code == 2
    assert cli("score", "1", "--all").exit_code == 2
    assert cli("model", "report").exit_code == 3
    cli("model", "train", "--entities", "5000", "--seed", "1")
    assert cli("score", "99999999").exit_code == 3
