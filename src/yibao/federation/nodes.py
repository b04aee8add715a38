"""The federation as this process sees it: its role, its region, the hub or the nodes, and the keys."""

from __future__ import annotations

from dataclasses import dataclass, field

from yibao.config import Settings
from yibao.federation.protocol import key_bytes


@dataclass(frozen=True)
class Peer:
    admdvs: str
    url: str
    key: bytes = field(repr=False)


@dataclass(frozen=True)
class Federation:
    role: str            # "node" | "hub"
    admdvs: str          # this node's region ("" for the hub)
    hub_url: str = ""
    key: bytes = field(default=b"", repr=False)
    peers: tuple[Peer, ...] = ()
    timeout_s: float = 5.0

    def province_of(self, region: str) -> Peer | None:
        """The node that holds a region's people: the one whose region is in the same province."""
        return next((p for p in self.peers if p.admdvs[:2] == region[:2]), None)

    def key_of(self, node: str) -> bytes | None:
        if self.role == "node":
            return self.key if node == "hub" else None
        peer = next((p for p in self.peers if p.admdvs == node), None)
        return peer.key if peer else None

    def is_home(self, region: str) -> bool:
        """Whether a person insured in ``region`` is this node's (same province); "" is."""
        return not region or region[:2] == self.admdvs[:2]


def from_settings(settings: Settings) -> Federation | None:
    """The federation the settings describe, or None for a node on its own. Wrong settings stop the start."""
    role = settings.federation_role.strip()
    if not role:
        return None
    if role == "node":
        if not settings.federation_hub or not settings.federation_key:
            raise ValueError("a federation node needs YIBAO_FEDERATION_HUB and YIBAO_FEDERATION_KEY")
        return Federation("node", settings.platform_admdvs, settings.federation_hub.rstrip("/"),
                          key_bytes(settings.federation_key, "YIBAO_FEDERATION_KEY"), timeout_s=settings.federation_timeout_s)
    if role == "hub":
        peers = []
        for item in filter(None, (x.strip() for x in settings.federation_nodes.split(","))):
            region, _, rest = item.partition("=")
            url, _, key = rest.partition("#")
            if len(region) != 6 or not region.isdigit() or not url:
                raise ValueError(f"YIBAO_FEDERATION_NODES: '{item.split('#')[0]}' is not <region>=<url>#<key>")
            peers.append(Peer(region, url.rstrip("/"), key_bytes(key, f"the key of node {region}")))
        if not peers:
            raise ValueError("the hub needs YIBAO_FEDERATION_NODES")
        return Federation("hub", "", peers=tuple(peers), timeout_s=settings.federation_timeout_s)
    raise ValueError(f"YIBAO_FEDERATION_ROLE must be node or hub, not '{role[:10]}'")
