"""Simulations are jobs of the database-coordinated worker (issue 17, finding 4): the designer's Simulate form
queues a job (303 to its page) and never runs it in the request; ``run_due`` (the worker) runs it in a child
process on a temporary database and the page shows the progress, then the summary. A per-user limit (429),
parameters checked before anything is queued (400 naming the field), a job seen only by its owner and admins,
a job whose worker died marked failed."""
from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select

from engine.commands import simulations
from engine.config import PROJECT_ROOT
from engine.runtime import clock
from engine.runtime.models import BackgroundJob, ProcessInstance
from engine.runtime.worker import run_background, run_due

ROUTE = (PROJECT_ROOT / "processes" / "route_by_risk.dmn").read_text(encoding="utf-8")


def _job_id(response) -> int:
    assert response.status_code == 303, response.text[:500]
    m = re.search(r"/designer/simulations/(\d+)$", response.headers["Location"])
    assert m, response.headers["Location"]
    return int(m.group(1))


def _jobs(web_env) -> list[BackgroundJob]:
    with web_env.tx() as s:
        jobs = list(s.scalars(select(BackgroundJob).order_by(BackgroundJob.id)))
        s.expunge_all()
    return jobs


def test_the_worker_runs_a_queued_what_if_simulation_and_its_page_shows_the_result(http, web_env):
    heavy = ROUTE.replace('<text>? in ("C", "D")</text>', "<text>-</text>")
    designer = http("designer")
    r = designer.post("/designer/simulate", {"entities": "60", "seed": "3"},
                      files={"decisions": ("all_heavy.dmn", heavy.encode(), "application/xml")})
    job_id = _job_id(r)
    (job,) = _jobs(web_env)  # queued, nothing simulated in the request
    assert (job.id, job.status, job.owner, job.kind) == (job_id, "queued", "designer", "simulation")
    assert job.params["entities"] == 60 and job.params["seed"] == 3
    assert [d["name"] for d in job.params["decisions"]] == ["all_heavy.dmn"]
    page = designer.get(f"/designer/simulations/{job_id}")
    assert page.status_code == 200 and 'data-status="queued"' in page.text
    assert 'http-equiv="refresh"' in page.text and 'id="simulation-summary"' not in page.text
    assert designer.get(f"/designer/simulations/{job_id}.json").json()["status"] == "queued"

    report = run_due(web_env.runtime, web_env.factory)  # the worker
    assert report.background_run == 1

    (job,) = _jobs(web_env)
    assert job.status == "done", job.error
    assert job.progress and job.progress.get("phase") in ("preparing", "running")
    assert job.started_at and job.finished_at and job.worker
    with web_env.tx() as s:  # the live database saw nothing of the run
        assert s.scalar(select(func.count()).select_from(ProcessInstance)) == 0
    page = designer.get(f"/designer/simulations/{job_id}")
    assert page.status_code == 200 and 'data-status="done"' in page.text and 'http-equiv="refresh"' not in page.text
    assert 'id="simulation-summary"' in page.text and 'data-key="audit_chain_ok"' in page.text
    assert 'id="simulation-decisions"' in page.text and "all_heavy.dmn" in page.text
    paths = re.search(r'data-key="paths".*?</table>', page.text, re.S).group(0)
    assert re.search(r'standard</td><td class="num">0<', paths), paths  # every entity took the heavy path
    status = designer.get(f"/designer/simulations/{job_id}.json").json()
    assert status["status"] == "done" and status["finished"] is True
    listing = designer.get("/designer/simulations")
    assert listing.status_code == 200 and f'data-job="{job_id}"' in listing.text

    # another simulator does not see it (nor list it); an administrator does
    supervisor = http("supervisor")
    assert supervisor.get(f"/designer/simulations/{job_id}").status_code == 403
    assert supervisor.get(f"/designer/simulations/{job_id}.json").status_code == 403
    assert f'data-job="{job_id}"' not in supervisor.get("/designer/simulations").text
    assert http("officer").get(f"/designer/simulations/{job_id}").status_code == 403
    assert http("admin").get(f"/designer/simulations/{job_id}").status_code == 200
    assert designer.get("/designer/simulations/999999").status_code == 404
    assert http(None).get(f"/designer/simulations/{job_id}").status_code in (302, 401)


def test_a_user_has_at_most_the_per_user_limit_of_simulations_queued_or_running(http, web_env):
    designer = http("designer")
    first = _job_id(designer.post("/designer/simulate", {"entities": "60"}))
    _job_id(designer.post("/designer/simulate", {"entities": "60"}))
    third = designer.post("/designer/simulate", {"entities": "60"})
    assert third.status_code == 429 and "最多 2 个" in third.text  # (the workbench speaks Chinese by default)
    assert len(_jobs(web_env)) == 2
    _job_id(http("supervisor").post("/designer/simulate", {"entities": "60"}))  # per user
    with web_env.tx() as s:  # one of them ends: the designer may ask for another
        s.get(BackgroundJob, first).status = "failed"
    _job_id(designer.post("/designer/simulate", {"entities": "60"}))
    assert http("officer").post("/designer/simulate", {"entities": "60"}).status_code == 403


def test_bad_parameters_are_refused_naming_the_field_and_nothing_is_queued(http, web_env):
    designer = http("designer")
    for data, files, field in [
        ({"entities": "5"}, None, "entities"),
        ({"entities": "lots"}, None, "entities"),
        ({"entities": "60", "seed": "x"}, None, "seed"),
        ({"entities": "60", "seed": str(2**40)}, None, "seed"),
        ({"entities": "60"}, {"decisions": ("notes.txt", b"hello", "text/plain")}, "decisions"),
        ({"entities": "60"}, {"decisions": ("broken.dmn", b"<definitions", "application/xml")}, "decisions"),
        ({"entities": "60"}, {"decisions": ("big.dmn", b" " * (simulations.MAX_DECISION_BYTES + 1),
                                            "application/xml")}, "decisions"),
        ({"entities": "60"}, {"decisions": ("latin.dmn", "é".encode("latin-1"), "application/xml")}, "decisions"),
    ]:
        r = designer.post("/designer/simulate", data, files=files)
        assert r.status_code == 400 and field in r.text, (data, files and list(files.values())[0][0], r.text[:300])
    stray = ROUTE.replace('decision id="route_by_risk"', 'decision id="route_by_mood"')
    r = designer.post("/designer/simulate", {"entities": "60"},
                      files={"decisions": ("mood.dmn", stray.encode(), "application/xml")})
    assert r.status_code == 400 and "mood.dmn" in r.text and "route_by_mood" in r.text
    assert _jobs(web_env) == []


def test_a_refused_what_if_table_fails_the_job_with_its_message(http, web_env):
    """The run checks the tables again (the library may have changed): its message names the file, never the
    worker's temporary folder."""
    stray = ROUTE.replace('decision id="route_by_risk"', 'decision id="route_by_mood"')
    with web_env.tx() as s:
        s.add(BackgroundJob(kind="simulation", owner="designer", status="queued", created_at=clock.now(),
                            params={"entities": 60, "seed": 1, "decisions": [{"name": "mood.dmn", "text": stray}]}))
    assert run_background(web_env.factory, stale_s=120) == 1
    (job,) = _jobs(web_env)
    assert job.status == "failed" and "mood.dmn" in job.error and "route_by_mood" in job.error
    assert "regflow-simjob" not in job.error
    page = http("designer").get(f"/designer/simulations/{job.id}")
    assert 'id="simulation-error"' in page.text and "route_by_mood" in page.text


def test_a_running_job_whose_worker_died_is_marked_failed(web_env):
    web_env.runtime  # noqa: B018  (registers the simulation runner)
    now = clock.now()
    with web_env.tx() as s:
        s.add(BackgroundJob(kind="simulation", owner="designer", status="running", created_at=now, started_at=now,
                            heartbeat_at=now - timedelta(seconds=300), worker="gone:1", params={}))
        s.add(BackgroundJob(kind="simulation", owner="designer", status="running", created_at=now, started_at=now,
                            heartbeat_at=now, worker="alive:2", params={}))
    assert run_background(web_env.factory, stale_s=120) == 0
    dead, alive = _jobs(web_env)
    assert dead.status == "failed" and "interrupted" in dead.error and dead.finished_at
    assert alive.status == "running"
