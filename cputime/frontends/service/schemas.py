"""Request and response schemas of the service (the OpenAPI document at ``/docs``).

Names are the library's: ``confidence_level``, ``threads``, ``host_slowdown`` (CPU seconds on
the host that runs the job per CPU second on the model's reference host). The older spellings
``confidence``, ``cores`` and ``host_factor`` are accepted too.

Visits are checked by the prediction code itself
(:func:`cputime.planning.predictions.predict_visits`: header keywords in any spelling PhoSim
accepts, the ranges of :data:`cputime.inputs.validation.RANGES`, as for catalogs, visit tables
and commands files), in one vectorised pass over a request's visits; :class:`Visit` documents
them.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, WithJsonSchema

__all__ = ["CatalogQuery", "PlanOptions", "PredictRequest", "PredictResponse", "Prediction",
           "Visit", "plan_options"]


class PlanOptions(BaseModel):
    """How the upper bound becomes a walltime (as the CLI's options)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    confidence_level: float | None = Field(
        None, gt=0, lt=1, validation_alias=AliasChoices("confidence_level", "confidence"),
        description="fixed coverage of the upper bound (default: the least-CPU-lost level); "
                    "`confidence` is accepted too",
    )
    queue_max_seconds: float | None = Field(
        None, gt=0, description="queue walltime limit [s]; longer jobs become checkpointed segments"
    )
    host_slowdown: float = Field(
        1.0, gt=0, validation_alias=AliasChoices("host_slowdown", "host_factor"),
        description="CPU seconds on your host per CPU second on the model's reference host "
                    "(> 1: a slower host); `host_factor` is accepted too",
    )
    threads: int = Field(1, ge=1, le=1024, validation_alias=AliasChoices("threads", "cores"),
                         description="PhoSim threads per job; `cores` is accepted too")


class Visit(BaseModel):
    """One planned visit: instance-catalog header keywords (``moonalt`` or ``Opsim_moonalt``);
    others are ignored.

    Angles in degrees, ``moonphase`` in percent, ``filter`` 0..5 (u g r i z y).
    """

    obshistid: int
    filter: int = Field(description="0..5 = u g r i z y")
    vistime: float | None = Field(None, description="visit time over all snaps [s]")
    nsnap: int | None = None
    airmass: float | None = None
    altitude: float | None = Field(None, description="[degrees]")
    moonalt: float | None = Field(None, description="[degrees]")
    moonphase: float | None = Field(None, description="[percent]")
    dist2moon: float | None = Field(None, description="[degrees]")
    sunalt: float | None = Field(None, description="[degrees]")
    seeing: float | None = Field(None, description="[arcsec]")


class PredictRequest(PlanOptions):
    """Planned visits to predict."""

    visits: list[Annotated[dict[str, Any], WithJsonSchema(Visit.model_json_schema())]] = Field(
        min_length=1, max_length=1_000_000
    )
    sensors: list[str] | None = Field(
        None, max_length=1000,
        description="one prediction per (visit, sensor) instead of one per visit",
    )


def plan_options(query: PlanOptions) -> PlanOptions:
    """The plan options of a request alone (what requests predicted together must share)."""
    return PlanOptions.model_construct(**{k: getattr(query, k) for k in PlanOptions.model_fields})


class CatalogQuery(PlanOptions):
    """Query of ``POST /v1/predict/catalog``."""

    sensors: str = Field("all", description="'all' or R22_S11,R01_S00,...")


class Prediction(BaseModel):
    """One row of ``cputime predict`` (more feature columns follow these)."""

    model_config = ConfigDict(extra="allow")

    obshistid: int
    sensor: str
    cpu_seconds_p50: float = Field(description="median CPU on the reference host [s]")
    cpu_seconds_upper: float = Field(description="upper bound at `confidence_level` [s]")
    walltime_seconds: int = Field(description="walltime of the longest segment [s]")
    segments: int
    slurm_time: str
    checkpointtotal: int
    segment_slurm_times: str = Field(description="`--time` of each segment, `;`-separated")
    slurm_signal: str
    fits_queue: bool
    plan_note: str = Field(description="what would fit a job that no checkpoint split fits")
    extrapolation: str = Field(
        description="drivers beyond the range the model was fitted on, by how much [dex]"
    )
    extrapolation_dex: float = Field(description="largest distance beyond the fitted range [dex]")
    filter: str = Field(description="u g r i z y (as `cputime predict` writes it)")


class PredictResponse(BaseModel):
    predictions: list[Prediction]
    model: dict
