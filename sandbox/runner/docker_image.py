"""Docker mode's image: built from a wheelhouse (runner/wheelhouse.py) on the chosen base image when
missing or out of date, tagged per project version and source digest, older builds pruned."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Callable

from sandbox.runner import wheelhouse
from sandbox.runner.docker_plan import DEFAULT_BASE_IMAGE, IMAGE_REPO, LABEL, DockerError


def base_python(client, base_image: str) -> tuple[str, str]:
    """(python version "3.11", arch) of the base image, pulling it if it is not on this machine."""
    from docker.errors import APIError, ContainerError, ImageNotFound

    try:
        client.images.get(base_image)
    except ImageNotFound:
        try:
            client.images.pull(base_image)
        except APIError as e:
            raise DockerError(f"the base image {base_image} is not on this machine and could not be pulled "
                              f"({e.explanation or e}); set [docker] base_image in sandbox.toml to an image "
                              f"you have (see `docker images`)") from None
    script = "import sys, platform; print('%d.%d' % sys.version_info[:2], platform.machine())"
    try:
        out = client.containers.run(base_image, ["python3", "-c", script], entrypoint=[], remove=True,
                                    network_disabled=True).decode().split()
    except (ContainerError, APIError) as e:
        raise DockerError(f"the base image {base_image} cannot run python3 ({e}); use an image with "
                          f"Python 3.11 or newer, like {DEFAULT_BASE_IMAGE}") from None
    return wheelhouse.parse_python_version(out[0]), out[1]


def image_tag(base_image: str) -> str:
    return f"{IMAGE_REPO}:{wheelhouse.version()}-{wheelhouse.source_digest(base_image)}"


def ensure_image(client, base_image: str, say: Callable[[str], None] = lambda _m: None) -> str:
    """The image's tag; built first when missing or out of date (different source, deps or base)."""
    from docker.errors import APIError, BuildError, ImageNotFound

    tag = image_tag(base_image)
    try:
        client.images.get(tag)
        return tag
    except ImageNotFound:
        pass
    say(f"building image {tag} from {base_image} (once per version of the project)")
    py, arch = base_python(client, base_image)
    with tempfile.TemporaryDirectory(prefix="sandbox-image-") as tmp:
        try:
            ctx = wheelhouse.write_context(Path(tmp), py, arch)
        except wheelhouse.WheelhouseError as e:
            raise DockerError(str(e)) from None
        try:
            image, _ = client.images.build(path=str(ctx), tag=tag, buildargs={"BASE_IMAGE": base_image}, rm=True,
                                           forcerm=True, labels={f"{LABEL}.image": "1", f"{LABEL}.base": base_image})
        except BuildError as e:
            raise DockerError(f"building the image failed at {failing_step(e.build_log)}: {e.msg}") from None
        except APIError as e:
            raise DockerError(f"building the image failed: {e.explanation or e}") from None
    image.tag(IMAGE_REPO, "latest")   # what compose/docker-compose.yml runs by default
    removed = prune_old_images(client, tag, base_image)
    if removed:
        say(f"removed {len(removed)} older sandbox image(s) no container uses: {', '.join(removed)}")
    return tag


def prune_old_images(client, keep: str, base_image: str) -> list[str]:
    """Untag this project's older builds from the same base (one per version, about 340 MB each);
    the engine deletes an image with its last tag. An image some container still uses, even a
    stopped one, is refused by the engine and stays; tags other than ours are never touched."""
    from docker.errors import APIError

    ours = re.compile(rf"^{re.escape(IMAGE_REPO)}:\d[^:]*-[0-9a-f]{{12}}$")
    removed = []
    for img in client.images.list(filters={"label": [f"{LABEL}.image=1", f"{LABEL}.base={base_image}"]}):
        for t in img.tags:
            if t == keep or not ours.match(t):
                continue
            try:
                client.images.remove(t)
            except APIError:
                continue
            removed.append(t)
    return sorted(removed)


def failing_step(build_log) -> str:
    """'step 3/7 (RUN python3 -m venv ...)' from the SDK's build log."""
    last = "an unknown step"
    for chunk in build_log or []:
        text = chunk.get("stream", "") if isinstance(chunk, dict) else str(chunk)
        m = re.match(r"\s*Step (\d+/\d+) : (.*)", text)
        if m:
            last = f"step {m.group(1)} ({m.group(2).strip()[:120]})"
    return last
