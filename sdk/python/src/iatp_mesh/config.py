"""Where a node's agent API is, read from its node.toml (the same file
`mesh-node run` reads): its `api` address and its token file."""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Union

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class ApiAddress:
    """`http://127.0.0.1:7800` (base_url) or a Unix socket (uds)."""

    base_url: str
    uds: Union[str, None] = None


class ConfigError(Exception):
    """The config or the token file cannot be used."""


def parse_address(text: str, base: Path) -> ApiAddress:
    """`IP:PORT` or `unix:PATH` (relative to `base`)."""
    if text.startswith("unix:"):
        path = text[len("unix:"):]
        if not path:
            raise ConfigError("`unix:` needs a socket path")
        return ApiAddress("http://localhost", str(base / path))
    return ApiAddress(f"http://{text}")


def read_token(path: Path) -> str:
    """The token in `path`, refused if others may read the file."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror}") from e
    if mode & 0o077:
        raise ConfigError(
            f"{path} has permissions {mode:03o}, so other users can read the agent API's token; "
            f"run `chmod 600 {path}`"
        )
    token = path.read_text().strip()
    if len(token) < 16:
        raise ConfigError(f"{path} does not hold a token")
    return token


def from_node_config(config: Union[str, Path]) -> tuple[ApiAddress, str]:
    """The API's address and token for the node `config` sets up."""
    config = Path(config)
    try:
        raw = tomllib.loads(config.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{config}: {e}") from e
    base = config.parent
    if "api" not in raw:
        raise ConfigError(f"{config} sets no `api`: the node serves no agent API")
    address = parse_address(str(raw["api"]), base)
    token_file = raw.get("api_token_file")
    if token_file is not None:
        token_path = base / str(token_file)
    else:
        token_path = base / str(raw.get("data_dir", "data")) / "api-token"
    return address, read_token(token_path)
