"""Server "hosts" in Linux network namespaces, joined to the root namespace by links a test cuts.

The root namespace plays the third machine (PostgreSQL, Redis, the clients).
Each Host is a namespace with one veth pair to the root namespace per
purpose ("clients", "redis", "database"), each a /30 of its own, so each can
be cut alone. ``Link.cut`` is a pulled cable, not a refusal: it takes down
the end on the *listening* side, and the connecting side keeps its route and
a permanent neighbour entry for the far address, so its packets (SYNs
included) vanish without an RST or an error, as across a real network; TCP
retransmits, and an open connection resumes if the link returns in time.
(Taking down the connecting side's own end would fail its sends at once
with "no route", which is not what a remote failure looks like.)

Needs root and iproute2. Names carry this process's id, so runs side by side
never clash, and ``Network`` removes namespaces a dead run left behind
(deleting a namespace deletes its veth pairs). ``unavailable()`` says why
this machine cannot run them, for a skip.
"""

from __future__ import annotations

import ipaddress
import os
import random
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Literal

PREFIX = "mchost"  # namespace names: mchost-<pid>-<host>
Side = Literal["root", "host"]  # where a link's listener is: the end that a cut takes down


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ip ARGS``; raise with its message if it fails and ``check``."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")
    return done


def unavailable() -> str | None:
    """Why network namespaces cannot be used here (a skip reason), or None if they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "network namespaces need iproute2 (`ip`)"
    probe = f"{PREFIX}-{os.getpid()}-probe"
    made = ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` fails here: {made.stderr.strip()}"
    ip("netns", "delete", probe, check=False)
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale() -> None:
    """Delete the namespaces (and so their links) of runs whose process is gone."""
    listed = ip("netns", "list", check=False).stdout
    for name in re.findall(rf"^({PREFIX}-(\d+)-\S+)", listed, re.MULTILINE):
        if not _pid_alive(int(name[1])):
            ip("netns", "delete", name[0], check=False)


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 in 10.64.0.0/10 that no address or route of the root namespace touches."""
    used = ip("-4", "addr").stdout + ip("-4", "route").stdout
    taken = [
        ipaddress.ip_network(found, strict=False)
        for found in re.findall(r"(\d+\.\d+\.\d+\.\d+(?:/\d+)?)", used)
    ]
    chooser = random.Random(os.getpid())  # different runs side by side: different subnets
    for _ in range(1000):
        second, third = chooser.randrange(64, 128), chooser.randrange(256)
        subnet = ipaddress.IPv4Network(f"10.{second}.{third}.0/24")
        if not any(subnet.overlaps(other) for other in taken):
            return subnet
    raise RuntimeError("No free /24 in 10.64.0.0/10 for the test network")


@dataclass
class Link:
    """One veth pair between the root namespace and a host: root_ip <-> host_ip."""

    namespace: str
    root_dev: str
    host_dev: str
    root_ip: str
    host_ip: str
    listener: Side
    up: bool = True

    def cut(self) -> None:
        """Drop every packet on the link from now on: silence, no RST, no error."""
        self._set("down")

    def restore(self) -> None:
        """Carry packets again; open connections resume by retransmission."""
        self._set("up")

    def _set(self, state: str) -> None:
        if self.listener == "root":
            ip("link", "set", self.root_dev, state)
        else:
            ip("-n", self.namespace, "link", "set", self.host_dev, state)
        self.up = state == "up"


@dataclass
class Host:
    """A network namespace: one server "machine" with its own links to the root namespace."""

    name: str
    namespace: str
    links: dict[str, Link] = field(default_factory=dict)

    @property
    def exec_prefix(self) -> list[str]:
        """The command prefix that runs a program on this host."""
        return ["ip", "netns", "exec", self.namespace]

    def restore_all(self) -> None:
        """Bring every link of this host back up."""
        for link in self.links.values():
            if not link.up:
                link.restore()


class Network:
    """Hosts in namespaces of their own; ``close`` removes them all (links go with them)."""

    def __init__(self) -> None:
        remove_stale()
        self.subnet = _free_subnet()
        self.blocks = self.subnet.subnets(new_prefix=30)  # one per link
        self.hosts: list[Host] = []
        self._links = 0
        self._run = f"{os.getpid():x}"[-5:]  # keeps device names unique and under 16 bytes

    def host(self, name: str, links: dict[str, Side]) -> Host:
        """Make host ``name`` with a link per entry of ``links`` (purpose -> listener's side)."""
        host = Host(name=name, namespace=f"{PREFIX}-{os.getpid()}-{name}")
        ip("netns", "add", host.namespace)
        self.hosts.append(host)  # from now on, close() removes it
        ip("-n", host.namespace, "link", "set", "lo", "up")
        for purpose, listener in links.items():
            host.links[purpose] = self._link(host, listener)
        return host

    def _link(self, host: Host, listener: Side) -> Link:
        self._links += 1
        root_dev, host_dev = f"mc{self._run}r{self._links}", f"mc{self._run}h{self._links}"
        root_ip, host_ip = next(self.blocks).hosts()  # a /30: just the two ends
        ns = host.namespace
        ip("link", "add", root_dev, "type", "veth", "peer", "name", host_dev)
        ip("link", "set", host_dev, "netns", ns)
        ip("addr", "add", f"{root_ip}/30", "dev", root_dev)
        ip("-n", ns, "addr", "add", f"{host_ip}/30", "dev", host_dev)
        ip("link", "set", root_dev, "up")
        ip("-n", ns, "link", "set", host_dev, "up")
        # Permanent neighbour entries: with the far end down, packets are still sent
        # (and lost) instead of failing address resolution with "no route to host".
        root_mac = _mac(root_dev)
        host_mac = _mac(host_dev, ns)
        ip("-n", ns, "neigh", "replace", str(root_ip), "lladdr", root_mac, "dev", host_dev,
           "nud", "permanent")  # fmt: skip
        ip("neigh", "replace", str(host_ip), "lladdr", host_mac, "dev", root_dev,
           "nud", "permanent")  # fmt: skip
        return Link(ns, root_dev, host_dev, str(root_ip), str(host_ip), listener)

    def close(self) -> None:
        """Delete every host's namespace; its veth pairs go with it."""
        for host in self.hosts:
            ip("netns", "delete", host.namespace, check=False)
        self.hosts.clear()


def _mac(device: str, namespace: str | None = None) -> str:
    where = ["-n", namespace] if namespace else []
    shown = ip(*where, "-o", "link", "show", device).stdout
    found = re.search(r"link/ether ([0-9a-f:]{17})", shown)
    if found is None:
        raise RuntimeError(f"{device} has no MAC address: {shown}")
    return found.group(1)
