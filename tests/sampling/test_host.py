from metrics_app.sampling.host import HostSource

from .fake_psutil import POWER_TIME_UNKNOWN, POWER_TIME_UNLIMITED, make_psutil, sbattery, scpufreq


def test_reads_the_live_metrics_format_exactly():
    reading = HostSource(1.0, psutil=make_psutil()).read()
    assert reading == {
        "cpu": {"utilization": 37.5, "cores": 8, "frequency": 3200.0, "maxFrequency": 4200.0},
        "memory": {
            "total": 17179869184, "used": 8589934592, "available": 8589934592, "percent": 50.0,
            "swapTotal": 8589934592, "swapUsed": 0, "swapPercent": 0.0,
        },
        "battery": {"level": 85.0, "charging": False, "timeRemaining": 7200},
    }


def test_cpu_utilization_is_measured_since_the_previous_tick_not_since_boot():
    """The first cpu_percent(None) call is meaningless (0.0); the source spends it at construction."""
    source = HostSource(1.0, psutil=make_psutil(cpu_percent=[0.0, 12.0, 64.0]))
    assert source.read()["cpu"]["utilization"] == 12.0
    assert source.read()["cpu"]["utilization"] == 64.0


def test_frequency_reported_as_zero_by_a_vm_is_unknown_not_zero():
    reading = HostSource(1.0, psutil=make_psutil(cpu_freq=scpufreq(0.0, 0.0, 0.0))).read()
    assert reading["cpu"]["frequency"] is None
    assert reading["cpu"]["maxFrequency"] is None


def test_no_cpu_frequency_at_all_is_null():
    assert HostSource(1.0, psutil=make_psutil(cpu_freq=None)).read()["cpu"]["frequency"] is None


def test_no_battery_gives_null_battery():
    assert HostSource(1.0, psutil=make_psutil(battery=None)).read()["battery"] is None


def test_battery_time_unknown_or_unlimited_is_null():
    for secs in (POWER_TIME_UNKNOWN, POWER_TIME_UNLIMITED):
        battery = HostSource(1.0, psutil=make_psutil(battery=sbattery(40.0, secs, True))).read()["battery"]
        assert battery == {"level": 40.0, "charging": True, "timeRemaining": None}
