"""Model registry: versions stored in table ``model_version`` as skops artifacts with their metadata.

skops never unpickles: loading instantiates only the types named in :data:`TRUSTED_TYPES` (plus skops' own
safe defaults). Anything else — a corrupted file, a file whose sha256 does not match its row, a skops file
holding other types, or a model that is not a :class:`~scoring.predict.RiskModel` — raises
:class:`~scoring.errors.ModelLoadError` naming the file or row. The version string is
``rm-<UTC timestamp>-<first 8 hex digits of the artifact's sha256>``. At most one version is active (partial
unique index); services score with the active one and record its version on every entity they score.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import skops.io as sio
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine import txcache
from engine.db import utcnow
from scoring.errors import ModelLoadError, ModelVersionNotFound, NoActiveModel
from scoring.models import ModelVersion
from scoring.predict import RiskModel

#: Non-default types a regflow risk model artifact may contain. Nothing else is ever instantiated.
TRUSTED_TYPES = [
    "functools.partial",
    "scipy._lib.array_api_compat.numpy._aliases.asarray",
    "scipy.interpolate._bsplines.BSpline",
    "scoring.features.log10_capital",
    "scoring.features.log1p_clipped",
    "scoring.predict.RiskModel",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
]


def dumps_model(model: RiskModel) -> bytes:
    return sio.dumps(model, compression=8)


def loads_model(data: bytes, source: str) -> RiskModel:
    """Load an artifact after checking it only holds trusted types; ``source`` names it in errors."""
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:  # noqa: BLE001 - any parse failure means a corrupted/foreign file
        raise ModelLoadError(source, f"not a skops model artifact ({type(exc).__name__}: {exc})") from None
    foreign = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if foreign:
        raise ModelLoadError(source, f"foreign model: contains types regflow does not trust: {', '.join(foreign)}")
    try:
        model = sio.loads(data, trusted=TRUSTED_TYPES)
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(source, f"artifact cannot be rebuilt ({type(exc).__name__}: {exc})") from None
    if not isinstance(model, RiskModel) or model.pipeline is None or len(model.cutoffs) != 3:
        raise ModelLoadError(source, f"foreign model: expected a regflow RiskModel, got {type(model).__name__}")
    return model


def save_model_file(model: RiskModel, path: str | Path) -> str:
    """Write an artifact to ``path``; returns its sha256."""
    data = dumps_model(model)
    Path(path).write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def load_model_file(path: str | Path, sha256: str | None = None) -> RiskModel:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(str(path), f"cannot read file ({exc.strerror})") from None
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise ModelLoadError(str(path), "sha256 mismatch: the file was changed after it was stored")
    return loads_model(data, str(path))


def store_version(session: Session, model: RiskModel, metrics: dict, metadata: dict,
                  activate: bool | None = None) -> ModelVersion:
    """Add a version. ``activate=None``: activate it only if no version is active."""
    data = dumps_model(model)
    digest = hashlib.sha256(data).hexdigest()
    created = utcnow()
    version = f"rm-{created:%Y%m%dT%H%M%S}-{digest[:8]}"
    n = 1
    while session.scalar(select(ModelVersion.id).where(ModelVersion.version == version)) is not None:
        n += 1  # the same artifact stored twice within one second
        version = f"rm-{created:%Y%m%dT%H%M%S}-{digest[:8]}-{n}"
    metrics = {**metrics, "model_version": version}
    row = ModelVersion(version=version, created_at=created, active=False, kind=model.kind,
                       metrics=metrics, meta=metadata, artifact=data, sha256=digest)
    session.add(row)
    session.flush()
    if activate or (activate is None and get_active(session, required=False) is None):
        activate_version(session, version)
    return row


def list_versions(session: Session) -> list[ModelVersion]:
    return list(session.scalars(select(ModelVersion).order_by(ModelVersion.created_at, ModelVersion.id)))


def get_version(session: Session, version: str) -> ModelVersion:
    row = session.scalar(select(ModelVersion).where(ModelVersion.version == version))
    if row is None:
        raise ModelVersionNotFound(version)
    return row


def get_active(session: Session, required: bool = True) -> ModelVersion | None:
    row = session.scalar(select(ModelVersion).where(ModelVersion.active.is_(True)))
    if row is None and required:
        raise NoActiveModel()
    return row


def activate_version(session: Session, version: str) -> ModelVersion:
    row = get_version(session, version)
    load_row(row)  # never activate an artifact that does not load
    session.execute(update(ModelVersion).where(ModelVersion.active.is_(True), ModelVersion.id != row.id)
                    .values(active=False))
    session.flush()
    row.active = True
    session.flush()
    return row


_cache: dict[tuple[str, str], RiskModel] = {}


def load_row(row: ModelVersion) -> RiskModel:
    """Verify the row's sha256 and load its artifact (cached per process by version and digest)."""
    key = (row.version, row.sha256)
    model = _cache.get(key)
    if model is not None:
        return model
    source = f"model_version {row.version!r} (table model_version, id {row.id})"
    data = bytes(row.artifact)
    if hashlib.sha256(data).hexdigest() != row.sha256:
        raise ModelLoadError(source, "sha256 mismatch: the stored artifact was changed or corrupted")
    model = loads_model(data, source)
    _cache.clear()  # keep one model per process
    _cache[key] = model
    return model


def load_active(session: Session) -> tuple[str, RiskModel]:
    """The active model (read once per transaction: :mod:`engine.txcache`, dropped when a version changes)."""
    def load():
        row = get_active(session)
        return row.version, load_row(row)
    return txcache.get(session, "scoring.active_model", (ModelVersion.__tablename__,), load)
