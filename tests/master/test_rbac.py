"""RBAC with real kubectl (1.20 and 1.33) against a real master: users made by `pikube user create`, roles and
bindings made with kubectl, impersonation, `auth can-i`, escalation prevention and the default roles."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.master.conftest import ROOT, RunningMaster, kubectl_path, start_master

pytestmark = pytest.mark.integration
NS = "team"


@pytest.fixture(scope="module")
def rbac_master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningMaster]:
    base = tmp_path_factory.mktemp("rbac")
    m = start_master(base / "master")  # `pikube user` finds a master's data as <data dir>/master
    yield m
    m.stop()


def run(config: Path, which: str, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([kubectl_path(which), "--kubeconfig", str(config), *args], capture_output=True, text=True,
                          timeout=60, input=input, env={"HOME": str(config.parent), "PATH": "/usr/bin:/bin"})


def ok(config: Path, which: str, *args: str, input: str | None = None) -> str:
    proc = run(config, which, *args, input=input)
    assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def user(master: RunningMaster, name: str, *groups: str) -> Path:
    out = master.data_dir.parent / f"{name}.kubeconfig"
    argv = [sys.executable, "-m", "pikube.cli", "user", "--config-dir", str(master.data_dir.parent / "no-config"),
            "--data-dir", str(master.data_dir.parent), "create", name, "--server", master.url, "--out", str(out),
            *(a for g in groups for a in ("--group", g))]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert "kubectl create rolebinding" in proc.stdout
    return out


@pytest.mark.parametrize("which", ["old", "new"])
def test_a_user_sees_only_what_its_binding_grants(rbac_master: RunningMaster, which: str) -> None:
    admin = rbac_master.kubeconfig
    name = f"alice-{which}"
    alice = user(rbac_master, name, "students")
    ok(admin, which, "create", "namespace", f"{NS}-{which}")
    ns = f"{NS}-{which}"
    ok(admin, which, "-n", ns, "create", "configmap", "notes", "--from-literal=a=b")
    ok(admin, which, "-n", ns, "create", "secret", "generic", "key", "--from-literal=k=v")
    denied = run(alice, which, "-n", ns, "get", "configmaps")
    assert denied.returncode != 0
    assert (f'configmaps is forbidden: User "{name}" cannot list resource "configmaps" in API group "" in the '
            f'namespace "{ns}"') in denied.stderr

    ok(admin, which, "-n", ns, "create", "rolebinding", f"{name}-view", "--clusterrole=view", f"--user={name}")
    assert "notes" in ok(alice, which, "-n", ns, "get", "configmaps")
    assert run(alice, which, "-n", "default", "get", "configmaps").returncode != 0  # only in its namespace
    secrets = run(alice, which, "-n", ns, "get", "secret", "key")
    assert secrets.returncode != 0 and 'cannot get resource "secrets"' in secrets.stderr
    delete = run(alice, which, "-n", ns, "delete", "configmap", "notes")
    assert delete.returncode != 0
    assert f'User "{name}" cannot delete resource "configmaps"' in delete.stderr
    assert ok(alice, which, "-n", ns, "auth", "can-i", "list", "pods").strip() == "yes"
    assert run(alice, which, "-n", ns, "auth", "can-i", "create", "deployments").stdout.strip() == "no"
    # The admin asks on alice's behalf (impersonation), and a group binding reaches her too.
    assert run(admin, which, "-n", ns, "auth", "can-i", "create", "deployments", f"--as={name}").stdout.strip() == "no"
    ok(admin, which, "-n", ns, "create", "rolebinding", "students-edit", "--clusterrole=edit", "--group=students")
    assert ok(admin, which, "-n", ns, "auth", "can-i", "create", "deployments", f"--as={name}",
              "--as-group=students").strip() == "yes"
    assert ok(alice, which, "-n", ns, "auth", "can-i", "create", "deployments").strip() == "yes"
    # Revoking is deleting the binding.
    ok(admin, which, "-n", ns, "delete", "rolebinding", "students-edit", f"{name}-view")
    assert run(alice, which, "-n", ns, "get", "configmaps").returncode != 0


def test_can_i_list_shows_the_rules_and_service_accounts_are_subjects(rbac_master: RunningMaster) -> None:
    admin = rbac_master.kubeconfig
    ok(admin, "new", "create", "namespace", "bots")
    ok(admin, "new", "-n", "bots", "create", "serviceaccount", "bot")
    ok(admin, "new", "-n", "bots", "create", "role", "pod-reader", "--verb=get,list,watch", "--resource=pods")
    ok(admin, "new", "-n", "bots", "create", "rolebinding", "bot-reads", "--role=pod-reader",
       "--serviceaccount=bots:bot")
    listed = ok(admin, "new", "-n", "bots", "auth", "can-i", "--list", "--as=system:serviceaccount:bots:bot")
    rows = {line.split()[0]: line for line in listed.splitlines()[1:] if line.strip()}
    assert "pods" in rows and "[get list watch]" in rows["pods"]
    assert "selfsubjectaccessreviews.authorization.k8s.io" in rows  # system:basic-user, bound to everyone
    assert ok(admin, "old", "-n", "bots", "auth", "can-i", "watch", "pods",
              "--as=system:serviceaccount:bots:bot").strip() == "yes"
    assert run(admin, "old", "-n", "bots", "auth", "can-i", "delete", "pods",
               "--as=system:serviceaccount:bots:bot").stdout.strip() == "no"
    assert run(admin, "new", "-n", "default", "auth", "can-i", "list", "pods",
               "--as=system:serviceaccount:bots:bot").stdout.strip() == "no"


def test_granting_what_one_does_not_hold_is_an_escalation(rbac_master: RunningMaster) -> None:
    admin = rbac_master.kubeconfig
    ok(admin, "new", "create", "namespace", "class")
    bob = user(rbac_master, "bob")
    ok(admin, "new", "-n", "class", "create", "rolebinding", "bob-admin", "--clusterrole=admin", "--user=bob")
    # admin in "class" may hand out view there, which it holds...
    ok(bob, "new", "-n", "class", "create", "rolebinding", "pupil-view", "--clusterrole=view", "--user=pupil")
    # ...but not cluster-admin, nor a role with rules it lacks.
    escalate = run(bob, "new", "-n", "class", "create", "rolebinding", "bob-root", "--clusterrole=cluster-admin",
                   "--user=bob")
    assert escalate.returncode != 0
    assert ('rolebindings.rbac.authorization.k8s.io "bob-root" is forbidden: user "bob" (groups=["system:'
            'authenticated"]) is attempting to grant RBAC permissions not currently held:') in escalate.stderr
    assert '{APIGroups:["*"], Resources:["*"], Verbs:["*"]}' in escalate.stderr
    role = run(bob, "new", "-n", "class", "create", "role", "nodes-too", "--verb=get", "--resource=nodes")
    assert role.returncode != 0 and "attempting to grant RBAC permissions not currently held" in role.stderr
    assert run(admin, "new", "-n", "class", "get", "rolebinding", "bob-root").returncode != 0  # nothing stored


def test_default_roles_aggregation_and_bad_input(rbac_master: RunningMaster, tmp_path: Path) -> None:
    admin = rbac_master.kubeconfig
    roles = ok(admin, "new", "get", "clusterroles", "-o", "name").split()
    for name in ("cluster-admin", "admin", "edit", "view", "system:discovery", "system:basic-user"):
        assert f"clusterrole.rbac.authorization.k8s.io/{name}" in roles
    view = json.loads(ok(admin, "new", "get", "clusterrole", "view", "-o", "json"))
    assert any("pods" in r.get("resources", []) for r in view["rules"])
    assert not any("secrets" in r.get("resources", []) for r in view["rules"])
    # An add-on's role labelled aggregate-to-view joins view.
    crd_reader = textwrap.dedent("""\
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRole
        metadata:
          name: widgets-view
          labels: {rbac.authorization.k8s.io/aggregate-to-view: "true"}
        rules:
        - apiGroups: [example.com]
          resources: [widgets]
          verbs: [get, list]
        """)
    ok(admin, "new", "apply", "-f", "-", input=crd_reader)

    def has_widgets() -> bool:
        rules = json.loads(ok(admin, "new", "get", "clusterrole", "view", "-o", "json"))["rules"]
        return any("widgets" in r.get("resources", []) for r in rules)

    from pikube.dev.netlab import wait_for
    wait_for("view aggregates widgets-view", has_widgets, 20, 0.2)
    bad_rule = run(admin, "new", "create", "-f", "-", input=json.dumps({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "bad", "namespace": "default"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": []}]}))
    assert bad_rule.returncode != 0
    assert "rules[0].verbs: Required value: verbs must contain at least one value" in bad_rule.stderr
    ok(admin, "new", "-n", "default", "create", "rolebinding", "fixed", "--clusterrole=view", "--user=carol")
    moved = run(admin, "new", "-n", "default", "patch", "rolebinding", "fixed", "--type=merge",
                "-p", '{"roleRef": {"name": "edit"}}')
    assert moved.returncode != 0 and "cannot change roleRef" in moved.stderr
    # kubectl auth reconcile makes a role and binding, and again changes nothing.
    manifest = tmp_path / "rbac.yaml"
    manifest.write_text(textwrap.dedent("""\
        apiVersion: rbac.authorization.k8s.io/v1
        kind: Role
        metadata: {name: cm-writer, namespace: default}
        rules:
        - {apiGroups: [""], resources: [configmaps], verbs: [create, update]}
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: RoleBinding
        metadata: {name: cm-writer, namespace: default}
        roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: cm-writer}
        subjects:
        - {apiGroup: rbac.authorization.k8s.io, kind: User, name: dave}
        """))
    for which in ("old", "new"):
        ok(admin, which, "auth", "reconcile", "-f", str(manifest))
    assert ok(admin, "new", "-n", "default", "auth", "can-i", "create", "configmaps", "--as=dave").strip() == "yes"


def test_auth_whoami_names_the_user_its_groups_and_the_impersonated(rbac_master: RunningMaster) -> None:
    erin = user(rbac_master, "erin", "tutors")
    out = ok(erin, "new", "auth", "whoami")
    assert "erin" in out and "tutors" in out and "system:authenticated" in out
    admin = ok(rbac_master.kubeconfig, "new", "auth", "whoami", "--as=frank", "--as-group=pupils")
    assert "frank" in admin and "pupils" in admin and "system:masters" not in admin
    denied = run(erin, "new", "auth", "whoami", "--as=frank")  # kubectl words the 403 itself
    assert denied.returncode != 0 and "you do not have permission to call it" in denied.stderr
    raw = run(erin, "new", "get", "--raw", "/api", "--as=frank")
    assert raw.returncode != 0 and "cannot impersonate resource" in raw.stderr and "users" in raw.stderr


@pytest.mark.parametrize("which", ["old", "new"])
def test_auth_reconcile_makes_and_widens_roles_and_bindings(rbac_master: RunningMaster, tmp_path: Path,
                                                            which: str) -> None:
    admin = rbac_master.kubeconfig
    ns = f"reconcile-{which}"
    ok(admin, which, "create", "namespace", ns)
    manifest = tmp_path / "rbac.yaml"
    role = textwrap.dedent(f"""\
        apiVersion: rbac.authorization.k8s.io/v1
        kind: Role
        metadata: {{name: deployer, namespace: {ns}}}
        rules:
        - {{apiGroups: ["apps"], resources: ["deployments"], verbs: ["get", "list"]}}
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: RoleBinding
        metadata: {{name: deployer, namespace: {ns}}}
        roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: deployer}}
        subjects: [{{kind: User, name: carol, apiGroup: rbac.authorization.k8s.io}}]
        """)
    manifest.write_text(role)
    out = ok(admin, which, "auth", "reconcile", "-f", str(manifest))
    assert "role.rbac.authorization.k8s.io/deployer" in out and "rolebinding.rbac.authorization.k8s.io/deployer" in out
    assert run(admin, which, "-n", ns, "auth", "can-i", "list", "deployments", "--as=carol").stdout.strip() == "yes"
    assert run(admin, which, "-n", ns, "auth", "can-i", "delete", "deployments", "--as=carol").stdout.strip() == "no"
    # Reconciling a wider role adds the rule; a rule the file drops stays (no --remove-extra-permissions).
    manifest.write_text(role.replace('verbs: ["get", "list"]', 'verbs: ["delete"]'))
    ok(admin, which, "auth", "reconcile", "-f", str(manifest))
    assert run(admin, which, "-n", ns, "auth", "can-i", "delete", "deployments", "--as=carol").stdout.strip() == "yes"
    assert run(admin, which, "-n", ns, "auth", "can-i", "list", "deployments", "--as=carol").stdout.strip() == "yes"
    ok(admin, which, "auth", "reconcile", "-f", str(manifest), "--remove-extra-permissions")
    assert run(admin, which, "-n", ns, "auth", "can-i", "list", "deployments", "--as=carol").stdout.strip() == "no"
