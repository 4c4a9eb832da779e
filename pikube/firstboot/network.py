"""Wi-Fi and the wired address, as systemd-networkd and wpa_supplicant files.

Wi-Fi is the step users' preseeds most often get wrong, and the usual failure
is silent: a network without a country code leaves the radio blocked or on
the most restrictive channels. So this step sets the country three ways (the
`country=` line wpa_supplicant applies when it starts, cfg80211's module
option for every later boot, and `iw reg set` now) and unblocks rfkill both
now (`rfkill unblock wifi`) and in systemd-rfkill's saved state, which would
otherwise block the radio again at the next boot. The passphrase is stored as
its WPA hash (`psk=`, what `wpa_passphrase` prints), never as written; and
when pikube.yaml no longer holds it (first boot removed it from the card) the
hash already on the board is kept for the same network.

The wired link gets `10-pikube-eth.network`: a static address, or DHCP. The
image's catch-all `90-pikube-dhcp.network` (eth*, en*, usb*) sorts after it,
and networkd uses the first file that matches a link.
"""

from __future__ import annotations

import hashlib
import re

from core.boardconfig import BoardConfig, Wifi
from pikube.firstboot.host import Host, read_text, symlink, write_file
from pikube.firstboot.step import Outcome, StepError, changed, skipped

WPA_CONF = "/etc/wpa_supplicant/wpa_supplicant-wlan0.conf"
WLAN_NETWORK = "/etc/systemd/network/20-pikube-wlan.network"
ETH_NETWORK = "/etc/systemd/network/10-pikube-eth.network"
WPA_TEMPLATE = "wpa_supplicant@.service"
WPA_UNIT = "wpa_supplicant@wlan0.service"
WPA_LINK = f"/etc/systemd/system/multi-user.target.wants/{WPA_UNIT}"
UNIT_DIRS = ("/lib/systemd/system", "/usr/lib/systemd/system")
REGDOM_CONF = "/etc/modprobe.d/pikube-wifi.conf"
RFKILL_STATE = "/var/lib/systemd/rfkill"
RFKILL_SYS = "/sys/class/rfkill"

WLAN_NETWORK_TEXT = """\
# Written by pikube first boot from pikube.yaml (wifi:): Wi-Fi takes its address by DHCP.
[Match]
Name=wlan0

[Network]
DHCP=yes

[DHCPv4]
# When the cable is in too, the wired default route (metric 1024) wins.
RouteMetric=2048
"""


def reload_networkd(host: Host) -> None:
    """Make a running systemd-networkd read its files again; at boot it has not started yet and reads them then.

    Asked only when it runs: `networkctl` goes through D-Bus, which would start
    networkd, which waits for this unit (Before=network-pre.target), which
    would be waiting for networkctl.
    """
    if host.run(["systemctl", "is-active", "--quiet", "systemd-networkd.service"], check=False).returncode == 0:
        host.run(["networkctl", "reload"], check=False)


def wpa_psk(wifi: Wifi) -> str | None:
    """The 64-hex-digit WPA key for `wifi` (PBKDF2 of the passphrase and SSID, as wpa_passphrase computes)."""
    if wifi.passphrase is None:
        return None
    if len(wifi.passphrase) == 64:
        return wifi.passphrase.lower()
    return hashlib.pbkdf2_hmac("sha1", wifi.passphrase.encode(), wifi.ssid.encode(), 4096, 32).hex()


def stored_psk(conf_text: str, ssid_hex: str) -> str | None:
    """The psk= of the network `ssid_hex` in a wpa_supplicant file pikube wrote, if any."""
    if not re.search(rf"^\s*ssid={ssid_hex}\s*$", conf_text, re.MULTILINE):
        return None
    found = re.search(r"^\s*psk=([0-9a-f]{64})\s*$", conf_text, re.MULTILINE)
    return found.group(1) if found else None


def wpa_conf(wifi: Wifi, psk: str | None) -> str:
    ssid_hex = wifi.ssid.encode().hex()
    auth = f"\tpsk={psk}" if psk else "\tkey_mgmt=NONE"
    return (
        "# Written by pikube first boot from pikube.yaml (wifi:). The passphrase is kept only as its WPA hash.\n"
        "ctrl_interface=DIR=/run/wpa_supplicant GROUP=netdev\n"
        "update_config=0\n"
        f"country={wifi.country}\n"
        "\n"
        "network={\n"
        f"\t# ssid {wifi.ssid!r}, hex-encoded\n"
        f"\tssid={ssid_hex}\n"
        "\tscan_ssid=1\n"
        f"{auth}\n"
        "}\n"
    )


def _unblock_rfkill(host: Host) -> bool:
    """Unblock every Wi-Fi radio now and in systemd-rfkill's saved state; True if a state file changed."""
    did = False
    state_dir = host.path(RFKILL_STATE)
    names = {p.name for p in state_dir.glob("*:wlan")} if state_dir.is_dir() else set()
    sys_dir = host.path(RFKILL_SYS)
    radios = sorted(sys_dir.glob("rfkill*")) if sys_dir.is_dir() else []
    for radio in radios:
        if read_text(radio / "type").strip() != "wlan":
            continue
        props = host.run(["udevadm", "info", "--query=property", f"--path={RFKILL_SYS}/{radio.name}"],
                         check=False).stdout
        id_path = next((ln.split("=", 1)[1] for ln in props.splitlines() if ln.startswith("ID_PATH=")), "")
        if id_path:
            names.add(f"{id_path}:wlan")
    for name in sorted(names):
        did |= write_file(state_dir / name, "0\n")
    if host.live and host.run(["rfkill", "unblock", "wifi"], check=False).returncode != 0:
        for radio in radios:  # no rfkill tool: the kernel's own switch
            if read_text(radio / "type").strip() == "wlan":
                (radio / "soft").write_text("0\n")
    return did


def wifi(host: Host, cfg: BoardConfig) -> Outcome:
    w = cfg.wifi
    if w is None:
        return skipped("not given; Wi-Fi stays as it is")
    template = next((f"{d}/{WPA_TEMPLATE}" for d in UNIT_DIRS if host.exists(f"{d}/{WPA_TEMPLATE}")), None)
    if template is None:
        raise StepError(f"{WPA_TEMPLATE} is not on this board: is the wpasupplicant package installed?")
    conf_path = host.path(WPA_CONF)
    psk = wpa_psk(w)
    kept = ""
    if psk is None:
        psk = stored_psk(read_text(conf_path), w.ssid.encode().hex())
        kept = " (its key kept from before)" if psk else " (an open network)"
    did = write_file(conf_path, wpa_conf(w, psk), 0o600)
    did |= write_file(host.path(WLAN_NETWORK), WLAN_NETWORK_TEXT)
    did |= symlink(host.path(WPA_LINK), template)
    did |= write_file(host.path(REGDOM_CONF),
                      f"# pikube first boot: the Wi-Fi country from pikube.yaml\n"
                      f"options cfg80211 ieee80211_regdom={w.country}\n")
    did |= _unblock_rfkill(host)
    if host.live:
        host.run(["iw", "reg", "set", w.country], check=False)
        host.run(["systemctl", "--no-block", "restart", WPA_UNIT], check=False)
        reload_networkd(host)
    what = f"{w.ssid!r}, country {w.country}{kept}"
    return changed(did, f"joins {what}", f"already set for {what}")


def eth_network(cfg: BoardConfig) -> str:
    head = ("# Written by pikube first boot from pikube.yaml (network:). It sorts before the image's\n"
            "# 90-pikube-dhcp.network, so it decides for the wired link.\n"
            "[Match]\nName=eth* en*\n\n[Network]\n")
    net = cfg.network
    if net is None:
        return head + "DHCP=yes\n"
    lines = [f"Address={net.address}"]
    if net.gateway:
        lines.append(f"Gateway={net.gateway}")
    lines += [f"DNS={server}" for server in net.dns]
    return head + "\n".join(lines) + "\n"


def ethernet(host: Host, cfg: BoardConfig) -> Outcome:
    did = write_file(host.path(ETH_NETWORK), eth_network(cfg))
    if did and host.live:
        reload_networkd(host)
    net = cfg.network
    what = "DHCP" if net is None else f"static {net.address}" + (f" via {net.gateway}" if net.gateway else "")
    return changed(did, f"wired link: {what}", f"wired link already {what}")
