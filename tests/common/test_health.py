"""Every service process answers /livez, /readyz and /metrics."""


READ_MODELS = {"partnership": {}, "rotation": {"rotation.school_directory": "partnership"},
               "training": {"training.staff_directory": "rotation"}}


async def _check(client, name):
    live = await client.get("/livez")
    assert live.status_code == 200
    assert live.json() == {"status": "ok", "process": name}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    feeds = body.pop("feeds", {})
    assert body == {"status": "ready", "process": name, "database": "ok"}
    # The local read models and the producers they follow (services/common/feed_consumer.py).
    assert {feed: detail["producer"] for feed, detail in feeds.items()} == READ_MODELS[name]
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
