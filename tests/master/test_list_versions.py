"""A list's `resourceVersion` and `resourceVersionMatch`, as Kubernetes serves and checks them."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.master.conftest import RunningMaster

pytestmark = pytest.mark.integration

NS = "rv-lists"


@pytest.fixture(scope="module")
def admin(master: RunningMaster) -> requests.Session:
    s = master.session()
    s.post(master.url + "/api/v1/namespaces", json={"metadata": {"name": NS}})
    return s


def url(master: RunningMaster) -> str:
    return f"{master.url}/api/v1/namespaces/{NS}/configmaps"


def names(body: dict[str, Any]) -> list[str]:
    """The test's own objects (the controllers put kube-root-ca.crt in every namespace, at a moment of their own)."""
    return sorted(item["metadata"]["name"] for item in body["items"] if item["metadata"]["name"] != "kube-root-ca.crt")


def test_exact_reads_the_list_as_it_was(master: RunningMaster, admin: requests.Session) -> None:
    for name in ("a", "b"):
        assert admin.post(url(master), json={"metadata": {"name": name}, "data": {"v": "1"}}).status_code == 201
    then = admin.get(url(master)).json()
    rv = then["metadata"]["resourceVersion"]
    assert admin.post(url(master), json={"metadata": {"name": "c"}}).status_code == 201
    assert admin.delete(url(master) + "/a").status_code == 200
    assert admin.patch(url(master) + "/b", json={"data": {"v": "2"}},
                       headers={"Content-Type": "application/merge-patch+json"}).status_code == 200

    exact = admin.get(url(master), params={"resourceVersion": rv, "resourceVersionMatch": "Exact"})
    assert exact.status_code == 200, exact.text
    body = exact.json()
    assert body["metadata"]["resourceVersion"] == rv
    assert names(body) == ["a", "b"]
    assert {i["metadata"]["name"]: i["data"]["v"] for i in body["items"] if i["metadata"]["name"] in ("a", "b")} == {
        "a": "1", "b": "1"}

    # NotOlderThan (also what a bare resourceVersion means) serves the latest state.
    for params in ({"resourceVersion": rv, "resourceVersionMatch": "NotOlderThan"}, {"resourceVersion": rv},
                   {"resourceVersion": "0"}):
        now = admin.get(url(master), params=params).json()
        assert names(now) == ["b", "c"], params
        assert int(now["metadata"]["resourceVersion"]) > int(rv)


def test_a_revision_not_reached_yet_is_a_timeout(master: RunningMaster, admin: requests.Session) -> None:
    current = int(admin.get(url(master)).json()["metadata"]["resourceVersion"])
    resp = admin.get(url(master), params={"resourceVersion": str(current + 1000), "resourceVersionMatch": "Exact"})
    assert resp.status_code == 504, resp.text
    body = resp.json()
    assert body["reason"] == "Timeout" and "Too large resource version" in body["message"]
    assert body["details"]["retryAfterSeconds"] == 1


@pytest.mark.parametrize(("params", "code", "text"), [
    ({"resourceVersionMatch": "Exact"}, 422, "resourceVersionMatch is forbidden unless resourceVersion is provided"),
    ({"resourceVersion": "0", "resourceVersionMatch": "Exact"}, 422,
     'resourceVersionMatch "exact" is forbidden for resourceVersion "0"'),
    ({"resourceVersion": "5", "resourceVersionMatch": "Newest"}, 422, 'Unsupported value: "Newest"'),
    ({"resourceVersion": "soon"}, 400, 'invalid resource version "soon"'),
])
def test_bad_version_options(master: RunningMaster, admin: requests.Session, params: dict[str, str], code: int,
                             text: str) -> None:
    resp = admin.get(url(master), params=params)
    assert resp.status_code == code, resp.text
    assert text in resp.json()["message"]
    assert admin.get(master.url + "/healthz").status_code == 200


def test_continue_with_a_resource_version(master: RunningMaster, admin: requests.Session) -> None:
    first = admin.get(url(master), params={"limit": "1"}).json()
    token = first["metadata"]["continue"]
    resp = admin.get(url(master), params={"limit": "1", "continue": token, "resourceVersion": "3"})
    assert resp.status_code == 400
    assert "specifying resource version is not allowed when using continue" in resp.json()["message"]
    resp = admin.get(url(master), params={"limit": "1", "continue": token, "resourceVersion": "3",
                                          "resourceVersionMatch": "Exact"})
    assert resp.status_code == 422 and "forbidden when continue is provided" in resp.json()["message"]
    ok = admin.get(url(master), params={"limit": "1", "continue": token, "resourceVersion": "0"})
    assert ok.status_code == 200 and ok.json()["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
