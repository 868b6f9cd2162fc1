"""Every service process answers /livez, /readyz and /metrics."""


async def _check(client, name):
    live = await client.get("/livez")
    assert live.status_code == 200
    assert live.json() == {"status": "ok", "process": name}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "process": name, "database": "ok"}
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert "spp_http_requests_total" in metrics.text
    assert live.headers["x-request-id"]


async def test_partnership_health(partnership):
    await _check(partnership, "partnership")


async def test_rotation_health(rotation):
    await _check(rotation, "rotation")


async def test_training_health(training):
    await _check(training, "training")
