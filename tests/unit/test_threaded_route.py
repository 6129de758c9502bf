"""A plain ``def`` route on a ThreadedRoute router behaves as FastAPI's own would."""

from __future__ import annotations

import threading

from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from licentia.server.api.threads import ThreadedRoute


class Echo(BaseModel):
    name: str
    times: int
    thread: str


async def caller() -> str:
    return "dependency"


def app_with_route() -> tuple[FastAPI, list[str]]:
    router = APIRouter(route_class=ThreadedRoute)
    loop_threads: list[str] = []

    @router.get("/echo/{name}", response_model=Echo)
    def echo(name: str, times: int = 1, who: str = Depends(caller)) -> dict[str, object]:
        assert who == "dependency"
        return {"name": name * times, "times": times, "thread": threading.current_thread().name}

    @router.get("/loop")
    async def loop() -> dict[str, str]:
        loop_threads.append(threading.current_thread().name)
        return {"ok": "yes"}

    app = FastAPI()
    app.include_router(router)
    return app, loop_threads


def test_a_plain_route_runs_off_the_event_loop_with_its_parameters_and_response_model() -> None:
    app, loop_threads = app_with_route()
    with TestClient(app) as client:
        assert client.get("/loop").status_code == 200
        answer = client.get("/echo/ab", params={"times": 2})
        assert answer.status_code == 200
        body = answer.json()
        assert (body["name"], body["times"]) == ("abab", 2)
        assert body["thread"] != loop_threads[0]  # not on the event loop's thread
        # parameters are still validated, and documented, as FastAPI's own
        assert client.get("/echo/ab", params={"times": "x"}).status_code == 422
        schema = client.get("/openapi.json").json()
        parameters = schema["paths"]["/echo/{name}"]["get"]["parameters"]
        assert {p["name"] for p in parameters} == {"name", "times"}


def test_a_route_that_returns_the_wrong_shape_is_still_caught_by_its_response_model() -> None:
    router = APIRouter(route_class=ThreadedRoute)

    @router.get("/bad", response_model=Echo)
    def bad() -> dict[str, object]:
        return {"name": "x"}

    app = FastAPI()
    app.include_router(router)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/bad").status_code == 500
