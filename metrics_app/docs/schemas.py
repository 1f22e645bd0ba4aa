"""Response shapes of the read side, for the OpenAPI document only.

The views build plain dicts and serialize them with orjson (marshmallow dumping would cost more
than the query on a page of 500); these schemas describe those dicts and the tests check that real
responses match them, so the two cannot drift silently.
"""
from __future__ import annotations

from marshmallow import Schema, fields, validate


class ErrorSchema(Schema):
    error = fields.String(required=True, metadata={"description": "Short machine-readable code"})
    message = fields.String(required=True)
    details = fields.Raw(allow_none=True, metadata={"description": "Per-parameter or per-record problems"})


class LabelsSchema(Schema):
    gpuIndex = fields.Integer(required=True, allow_none=True, metadata={"description": "null when never sent"})
    hostname = fields.String(allow_none=True)
    gpuId = fields.String(allow_none=True, metadata={"description": "GPU UUID"})
    gpuName = fields.String(allow_none=True)


class MetricItemSchema(LabelsSchema):
    """A record is identified by its labels, metric, timestamp and (for processes) pid."""

    timestamp = fields.DateTime(required=True, metadata={"description": "UTC, millisecond precision, `Z` suffix"})
    metric = fields.String(required=True)
    payload = fields.Dict(required=True, metadata={
        "description": "The kind's fields (e.g. totalMiB/usedMiB/freeMiB for memory; null where a clocks record "
                       "lacked one), plus pid and name for process (null when not sent)"})


class MetricsPageSchema(Schema):
    items = fields.List(fields.Nested(MetricItemSchema), required=True)
    count = fields.Integer(required=True)
    next_cursor = fields.String(allow_none=True, required=True,
                                metadata={"description": "Pass as `cursor` for the next page; null on the last"})


def _resolution() -> fields.String:
    return fields.String(required=True, validate=validate.OneOf(("raw", "1m", "1h")), metadata={
        "description": "Coarsest tier that answered: raw records, per-minute or per-hour rollups (a range "
                       "older than a tier's retention is answered by the next one; inside a rollup tier a "
                       "minute or hour counts when it starts in the range)"})


class AggregateSchema(Schema):
    aggregate = fields.String(required=True)
    field = fields.String(allow_none=True, required=True)
    value = fields.Float(allow_none=True, required=True, metadata={"description": "null when no record matched"})
    count = fields.Integer(required=True, metadata={"description": "Records aggregated"})
    resolution = _resolution()


class BucketSchema(Schema):
    start = fields.DateTime(required=True)
    value = fields.Float(allow_none=True, required=True)
    count = fields.Integer(required=True)


class BucketSeriesSchema(Schema):
    aggregate = fields.String(required=True)
    field = fields.String(allow_none=True, required=True)
    bucket = fields.String(required=True, metadata={"description": "Bucket size as requested, e.g. 5m"})
    buckets = fields.List(fields.Nested(BucketSchema), required=True,
                          metadata={"description": "Only buckets that hold records"})
    count = fields.Integer(required=True)
    resolution = _resolution()


class GpuSchema(LabelsSchema):
    firstSeen = fields.DateTime(required=True)
    lastSeen = fields.DateTime(required=True)
    recordCount = fields.Integer(required=True)


class GpuListSchema(Schema):
    gpus = fields.List(fields.Nested(GpuSchema), required=True)
    count = fields.Integer(required=True)


class GpuStatsSchema(GpuSchema):
    metrics = fields.Dict(required=True, metadata={
        "description": 'Per metric: {"count": n, "fields": {field: {"avg", "min", "max"}}}'})


class StatsSchema(Schema):
    gpus = fields.List(fields.Nested(GpuStatsSchema), required=True)
    count = fields.Integer(required=True)


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={
        "description": "ok; degraded when the database fails (503), a background job's latest run failed or the "
                       "fleet stream's bus is degraded (Redis down, a sibling worker not reading; both 200)"})
    database = fields.Dict(required=True, metadata={"description": "reachable, dialect; error and reason on failure"})
    counts = fields.Dict(allow_none=True, required=True, metadata={"description": "records, gpus"})
    tailers = fields.Raw(allow_none=True, required=True, metadata={"description": "JSONL tailers' last runs"})
    writer = fields.Dict(metadata={
        "description": "This worker's writer thread: running, groups_committed, requests_committed, rows_committed, "
                       "failed_groups, failed_requests, last_group_requests, last_commit_ms, queued_rows, "
                       "last_error, last_error_age_sec"})
    jobs = fields.Dict(allow_none=True, required=True, metadata={
        "description": "leader: hostname:pid of the process running the background jobs now (the same from every "
                       "instance; null when none leads); lock: postgresql_advisory_lock or flock; runs: per job, "
                       "status (ok, failing, not_run_yet), last_success, last_failure, failures_in_a_row, "
                       "last_error, duration_ms"})
    fleet = fields.Dict(metadata={"description": "The live fleet stream: mode (redis across instances, workers "
                                                 "across this instance's gunicorn workers, or local), status, "
                                                 "reason, degraded_since, published, received, dropped"})
    repairedJsonBodies = fields.Integer(required=True, metadata={
        "description": "Bodies this worker process accepted after doubling backslashes that started no JSON "
                       "escape (Windows paths a crawler wrote unescaped), since it started"})


# -- the live snapshot (GET /api/metrics, GET /api/metrics/history, each /ws/metrics frame) ---------
def _number(description: str) -> fields.Float:
    return fields.Float(required=True, allow_none=True, metadata={"description": description})


def _integer(description: str) -> fields.Integer:
    return fields.Integer(required=True, allow_none=True, metadata={"description": description})


def _flag(description: str) -> fields.Boolean:
    return fields.Boolean(required=True, allow_none=True, metadata={"description": description})


class CpuSchema(Schema):
    utilization = _number("%")
    cores = _integer("Logical cores")
    frequency = _number("MHz; null where the OS reports none")
    maxFrequency = _number("MHz")


class HostMemorySchema(Schema):
    total, used, available = _integer("bytes"), _integer("bytes"), _integer("bytes")
    percent = _number("%")
    swapTotal, swapUsed, swapPercent = _integer("bytes"), _integer("bytes"), _number("%")


class BatterySchema(Schema):
    level = _number("%")
    charging = _flag("On mains power")
    timeRemaining = _integer("seconds; null while charging or unknown")


class SingleGpuSchema(Schema):
    """The live-metrics API's single ``gpu`` object: exactly these keys, ``gpus[0]`` of any vendor."""

    model, vendor = fields.String(required=True, allow_none=True), fields.String(required=True, allow_none=True)
    memoryTotal, memoryUsed, memoryFree = _integer("bytes"), _integer("bytes"), _integer("bytes")
    memoryPercent, utilization, memoryUtilization = _number("%"), _number("%"), _number("%")
    temperature, powerDraw = _number("°C"), _number("W")
    graphicsClock, memoryClock = _integer("MHz"), _integer("MHz")


class GpuProcessSchema(Schema):
    pid = fields.Integer(required=True)
    name = fields.String(required=True, allow_none=True, metadata={"description": "null when not visible"})
    usedMemory = _integer("bytes; null when the driver cannot say (Windows/WDDM, vGPU)")
    smUtilization = _number("% of the SMs over the last refresh (NVIDIA); 0 when idle")
    memUtilization = _number("% of memory bandwidth over the last refresh (NVIDIA)")


class MigDeviceSchema(Schema):
    index = fields.Integer(required=True)
    uuid = fields.String(required=True, allow_none=True)
    memoryTotal, memoryUsed, memoryFree = _integer("bytes"), _integer("bytes"), _integer("bytes")
    memoryPercent = _number("%")


class XidErrorsSchema(Schema):
    count = fields.Integer(required=True, metadata={"description": "XIDs seen since the service started"})
    last = fields.Integer(required=True, allow_none=True, metadata={"description": "The latest XID code"})
    lastAt = fields.String(required=True, allow_none=True, metadata={"description": "When (UTC ISO 8601)"})


class LiveGpuSchema(SingleGpuSchema):
    """One entry of ``gpus``, the same keys for every vendor. A null with a key in ``unsupported`` is a
    value this GPU or driver cannot give; a null with a key in ``fieldErrors`` is a call that failed."""

    index = fields.Integer(required=True)
    uuid = fields.String(required=True, allow_none=True)
    powerLimit, smClock, fanSpeed = _number("W"), _integer("MHz"), _number("% of maximum")
    pcieLinkGen, pcieLinkGenMax = _integer("Current PCIe generation"), _integer("Maximum PCIe generation")
    pcieLinkWidth, pcieLinkWidthMax = _integer("Current lanes"), _integer("Maximum lanes")
    pcieTxBytesPerSec, pcieRxBytesPerSec = _integer("bytes/s, read every GPU_PCIE_INTERVAL_SEC"), _integer("bytes/s")
    pcieReplayCount = _integer("PCIe replays (retransmissions)")
    eccEnabled = _flag("ECC on; the counts are null when it is off")
    eccCorrectedVolatile, eccUncorrectedVolatile = _integer("since driver load"), _integer("since driver load")
    eccCorrectedAggregate, eccUncorrectedAggregate = _integer("over the GPU's life"), _integer("over the GPU's life")
    remappedRowsCorrectable, remappedRowsUncorrectable = _integer("rows"), _integer("rows")
    remappedRowsPending, remappedRowsFailure = _flag("A remap waits for a reset"), _flag("Remapping failed")
    retiredPagesSingleBit, retiredPagesDoubleBit = _integer("pages"), _integer("pages")
    retiredPagesPending = _flag("A retirement waits for a reboot")
    throttleReasons = fields.List(fields.String(), required=True, allow_none=True, metadata={
        "description": "Active clock event reasons as nvidia-smi names them (gpu_idle, sw_power_cap, ...)"})
    throttled = _flag("A reason other than gpu_idle, applications_clocks_setting, display_clock_setting")
    powerDrawAverageWatts, powerDrawInstantWatts = _number("W, 1 s average"), _number("W, instantaneous")
    energyJoules = _number("J since the driver loaded")
    encoderUtilization, decoderUtilization, encoderSessions = _number("%"), _number("%"), _integer("sessions")
    performanceState = _integer("0 (P0) to 15; null for unknown and for AMD (no P-states)")
    memoryTemperatureCelsius = _number("°C (HBM parts)")
    xidErrors = fields.Nested(XidErrorsSchema, required=True, allow_none=True)
    processes = fields.List(fields.Nested(GpuProcessSchema), required=True, allow_none=True)
    migDevices = fields.List(fields.Nested(MigDeviceSchema), required=True, allow_none=True)
    unsupported = fields.Dict(keys=fields.String(), values=fields.String(), required=True, metadata={
        "description": "field -> not_supported, no_permission, function_not_found, not_reported, ecc_disabled"})
    fieldErrors = fields.Dict(keys=fields.String(), values=fields.String(), required=True, metadata={
        "description": "field -> the error of its call in the latest read (also in /api/health)"})
    available = fields.Boolean(required=True, metadata={"description": "false: the GPU failed as a whole"})
    error = fields.String(required=True, allow_none=True)
    stale = fields.Boolean(required=True, metadata={"description": "Its reader missed two reads in a row"})


class SnapshotSchema(Schema):
    timestamp = fields.String(required=True, metadata={"description": "UTC ISO 8601 with offset"})
    cpu = fields.Nested(CpuSchema, required=True, allow_none=True)
    memory = fields.Nested(HostMemorySchema, required=True, allow_none=True)
    gpu = fields.Nested(SingleGpuSchema, required=True, allow_none=True)
    battery = fields.Nested(BatterySchema, required=True, allow_none=True)
    gpus = fields.List(fields.Nested(LiveGpuSchema), required=True)
