"""The public draw pages: anyone can check a campaign's random draw (issue #18).

``/public/draws/`` lists the published draws; ``/public/draws/<id>`` shows one — its inputs (algorithm, code,
population hash, public value, seed, ratios, control share, capacity), the drawn entities by USCC (their class
only with ``REGFLOW_PUBLISH_RISK_CLASS=1``, never the control stratum), the server's verification and the command
that checks it offline. Downloads: the drawn list (``drawn.txt``), the population file the hash covers
(``population.csv``: public where classes are, otherwise for auditors — :func:`engine.policy.check_population_download`)
and the standalone verifier (``verifier.py``). Which draws are public and what they show is decided in
:mod:`engine.supervision.draw.public`; this module parses, calls and renders.
"""
from __future__ import annotations

from flask import Response, jsonify, render_template

from engine import policy
from engine.supervision.draw import public as draws
from web import params
from web.auth import current_actor
from web.extensions import read_session, settings
from web.public.views import bp

LIST_PAGE = 30


def _file(body: bytes, name: str, mimetype: str) -> Response:
    resp = Response(body, mimetype=mimetype)
    resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


@bp.route("/draws/")
def draws_index():
    page_no = params.page_arg(LIST_PAGE)
    rows, has_next = draws.list_public_draws(read_session(), limit=LIST_PAGE, offset=(page_no - 1) * LIST_PAGE)
    return render_template("public/draws.html", rows=rows, has_next=has_next, page_no=page_no)


@bp.route("/draws/<int:campaign_id>")
def draw_detail(campaign_id: int):
    page_no = params.page_arg(draws.PAGE_MAX)
    risk_class = settings().publish_risk_class
    s = read_session()
    draw = draws.public_draw(s, campaign_id, risk_class=risk_class, offset=(page_no - 1) * draws.PAGE_MAX)
    return render_template("public/draw.html", draw=draw, page_no=page_no, check=draws.verification(s, campaign_id),
                           command=draws.verifier_command(draw), population_public=risk_class)


@bp.route("/draws/<int:campaign_id>.json")
def draw_json(campaign_id: int):
    """The draw's inputs, the first page of its drawn list and the server's check, as JSON."""
    s = read_session()
    draw = draws.public_draw(s, campaign_id, risk_class=settings().publish_risk_class)
    resp = jsonify({**draw, "verification": draws.verification(s, campaign_id)})
    resp.headers["Cache-Control"] = "public, max-age=60"
    return resp


@bp.route("/draws/<int:campaign_id>/drawn.txt")
def draw_drawn_list(campaign_id: int):
    return _file(draws.drawn_list_file(read_session(), campaign_id), "drawn.txt", "text/plain")


@bp.route("/draws/<int:campaign_id>/population.csv")
def draw_population(campaign_id: int):
    classes_public = settings().publish_risk_class
    actor = None if classes_public else current_actor()  # (an anonymous visitor is asked to sign in)
    policy.check_population_download(actor, classes_public=classes_public)
    _code, body = draws.population_file(read_session(), campaign_id)
    return _file(body, "population.csv", "text/csv")


@bp.route("/draws/verifier.py")
def draw_verifier():
    return _file(draws.standalone_verifier_source(), "verifier.py", "text/x-python")
