"""Every real rocm-smi output under ../shared/fixtures/rocm-smi parsed, with its values checked."""
from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from metrics_app.sampling.gpu_fields import GPU_KEYS
from metrics_app.sampling.rocm import RocmSmiError, parse

NAVI22 = "Navi 22 [Radeon RX 6700/6700 XT / 6800M]"
MI100 = "Arcturus GL-XL [Instinct MI100]"

#: fixture -> (number of cards, {card index: expected fields})
EXPECTED = {
    "mi100_rocm571_telegraf": (6, {
        0: dict(model=MI100, uuid=None, memoryTotal=34342961152, memoryUsed=6782976, temperature=31.0,
                powerDraw=39.0, powerLimit=290.0, graphicsClock=300, memoryClock=1200, utilization=0.0),
        5: dict(powerDraw=40.0, temperature=33.0)}),
    "mi100_rocm602_telegraf": (4, {
        0: dict(uuid="0x79ccd55167a2124a", temperature=53.0, powerDraw=36.0, memoryUsed=6750208),
        1: dict(uuid="0x4edfb117a17a07d", powerDraw=44.0, temperature=55.0)}),
    "mi210_rocm5x_wandb-py": (1, {
        0: dict(model="GENERIC RM IMAGE", uuid="0x43cc8cc8af246708", memoryTotal=None, temperature=33.0,
                powerDraw=41.0, powerLimit=300.0, graphicsClock=800, smClock=800, memoryClock=1600)}),
    "mi250_rocm5x_wandb-core": (2, {
        0: dict(model="AMD INSTINCT MI250 (MCM) OAM AC MBA", utilization=10.0, powerDraw=89.0, powerLimit=560.0),
        1: dict(utilization=20.0, temperature=32.0)}),
    "rx6700xt_rocm430_telegraf": (1, {  # ROCm 4.3 printed the vendor id as the card series
        0: dict(model="AMD GPU 0x73df", temperature=45.0, memoryTotal=12868124672, memoryUsed=1622728704,
                powerDraw=6.0, powerLimit=211.0, graphicsClock=500, memoryClock=96, fanSpeed=None)}),
    "rx6700xt_rocm571_telegraf": (1, {0: dict(model=NAVI22, memoryUsed=1564491776, memoryPercent=12.2)}),
    "rx6700xt_rocm602_telegraf": (1, {0: dict(model=NAVI22, powerDraw=None, memoryUsed=1572757504)}),
    "rx6700xt_rocm612_telegraf": (1, {
        0: dict(model=NAVI22, memoryUsed=1572745216, memoryPercent=12.2, memoryUtilization=0.0, graphicsClock=0)}),
    "vega-10-XT_telegraf": (1, {
        0: dict(model="AMD GPU 0x6861", fanSpeed=13.0, temperature=39.0, memoryTotal=17163091968,
                memoryFree=17163091968 - 17776640, powerDraw=15.0, powerLimit=170.0, graphicsClock=1269,
                memoryClock=167, memoryUtilization=None)}),
    "vega-20-WKS-GL-XE_telegraf": (1, {
        0: dict(model="Radeon Instinct MI50 32GB", uuid="0x2f048617326b1ea", fanSpeed=0.0, temperature=36.0,
                graphicsClock=1725, memoryClock=1000, memoryUtilization=0.0)}),
}


def read_fixture(shared_dir: Path, name: str) -> str:
    return (shared_dir / "fixtures" / "rocm-smi" / f"rocm-smi_{name}.json").read_text()


def test_every_fixture_file_is_listed(shared_dir: Path) -> None:
    on_disk = {p.name[len("rocm-smi_"):-len(".json")] for p in (shared_dir / "fixtures" / "rocm-smi").glob("*.json")}
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_values(shared_dir: Path, name: str) -> None:
    count, cards = EXPECTED[name]
    gpus = parse(read_fixture(shared_dir, name))
    assert [g["index"] for g in gpus] == list(range(count))  # all cards, "system" is not one
    for index, fields in cards.items():
        gpu = gpus[index]
        assert tuple(gpu) == GPU_KEYS and gpu["vendor"] == "AMD" and gpu["available"] is True
        assert {key: gpu[key] for key in fields} == fields
        for key, reason in gpu["unsupported"].items():
            assert gpu[key] is None and reason == "not_reported"
    orjson.dumps(gpus)


def test_secondary_die_power_is_unknown_not_zero(shared_dir: Path) -> None:
    """ROCm 6.0.2 prints "N/A (Secondary die)" for power: null with a reason, not 0 W."""
    (gpu,) = parse(read_fixture(shared_dir, "rx6700xt_rocm602_telegraf"))
    assert gpu["powerDraw"] is None and gpu["unsupported"]["powerDraw"] == "not_reported"


def test_processes_are_not_attributed_per_gpu(shared_dir: Path) -> None:
    """The ROCm 5.7.1 "system" object lists PID104225 without saying which of the 6 GPUs it uses."""
    gpus = parse(read_fixture(shared_dir, "mi100_rocm571_telegraf"))
    assert all(g["processes"] is None and g["unsupported"]["processes"] == "not_reported" for g in gpus)


def test_current_socket_power_of_mi300_and_junction_only_temperature() -> None:
    """MI300 on ROCm 6.x: "Current Socket Graphics Package Power (W)" and no edge sensor."""
    (gpu,) = parse('{"card0": {"Current Socket Graphics Package Power (W)": "121.5",'
                   ' "Temperature (Sensor edge) (C)": "N/A", "Temperature (Sensor junction) (C)": "41.0"}}')
    assert gpu["powerDraw"] == 121.5 and gpu["temperature"] == 41.0


def test_warning_line_before_the_json_is_skipped() -> None:
    text = 'WARNING: AMD GPU device(s) is/are in a low-power state.\n{"card0": {"GPU use (%)": "7"}}\n'
    assert parse(text)[0]["utilization"] == 7.0


@pytest.mark.parametrize("garbage", ["", "ERROR: Unable to open /sys/class/drm", '{"card0": {"GPU use', "[1, 2]"])
def test_garbage_raises_a_clear_error(garbage: str) -> None:
    with pytest.raises(RocmSmiError, match="rocm-smi printed"):
        parse(garbage)


def test_rocm_2_lowercase_celsius_and_fan_speed_keys() -> None:
    """ROCm 2.x printed "Temperature (Sensor edge) (c)" and "Fan Speed (%)": temperature and fan came out null."""
    (gpu,) = parse('{"card0": {"Temperature (Sensor edge) (c)": "45.0", "Fan Speed (%)": "30.0",'
                   ' "Card  series": "Vega 20"}}')
    assert (gpu["temperature"], gpu["fanSpeed"], gpu["model"]) == (45.0, 30.0, "Vega 20")
    assert "temperature" not in gpu["unsupported"] and "fanSpeed" not in gpu["unsupported"]


def test_mi250_replay_count_energy_and_memory_temperature(shared_dir: Path) -> None:
    gpu = parse(read_fixture(shared_dir, "mi250_rocm5x_wandb-core"))[0]
    assert gpu["pcieReplayCount"] == 147 and gpu["memoryTemperatureCelsius"] == 43.0
    assert gpu["energyJoules"] == 962825096.297  # "Accumulated Energy (uJ)": "962825096297442.9"


def test_pcie_link_from_the_pcie_clock_level(shared_dir: Path) -> None:
    gpu = parse(read_fixture(shared_dir, "mi100_rocm571_telegraf"))[0]
    assert (gpu["pcieLinkGen"], gpu["pcieLinkWidth"]) == (3, 16)  # "0 (8.0GT/s x16)"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_rocm_smi_json_has_no_ecc_retired_pages_or_pstate(shared_dir: Path, name: str) -> None:
    """Its RAS table is text only; "Performance Level" (auto/high) is a policy, not a P-state."""
    for gpu in parse(read_fixture(shared_dir, name)):
        for key in ("eccEnabled", "eccCorrectedVolatile", "retiredPagesPending", "remappedRowsPending",
                    "throttleReasons", "performanceState", "xidErrors"):
            assert gpu[key] is None and gpu["unsupported"][key] == "not_reported"
