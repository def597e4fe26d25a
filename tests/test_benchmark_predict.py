"""nblib.apps.benchmark predict: start-up and per-image time from whole processes (the arithmetic,
on made-up process times: the timing itself is a benchmark, never a test)."""

from __future__ import annotations

from nblib.apps import benchmark


def test_startup_and_per_image_come_from_one_and_many_images(monkeypatch):
    calls = []

    def fake(model, images, out, extra):
        calls.append((len(images), extra))
        return 7.0 + 0.25 * len(images)  # start-up 7 s, then 0.25 s an image

    monkeypatch.setattr(benchmark, "_predict_seconds", fake)
    res = benchmark.predict_timing("ens", [f"{i}.png" for i in range(21)], repeats=2, sex="F")
    assert [n for n, _ in calls] == [1, 21, 1, 21]
    assert calls[0][1] == ["--sex", "F"]
    assert abs(res["per_image_s"] - 0.25) < 1e-9 and abs(res["startup_s"] - 7.0) < 1e-9
