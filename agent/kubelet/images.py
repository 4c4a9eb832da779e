"""imagePullPolicy: Never, IfNotPresent, Always, and the ErrImagePull → ImagePullBackOff sequence.

There may be no registry at all (a board offline, the test machine), so a failed
pull under `Always` of an image that is present falls back to it with a warning
event; a missing image gives `ErrImagePull` naming the image, then
`ImagePullBackOff` while the pull backs off (10 s doubling to 5 minutes). A
reference Docker cannot parse is `InvalidImageName` and is never pulled; an image
Docker fails to inspect is `ImageInspectError`; both with an `InspectFailed` event.
"""

from __future__ import annotations

from collections.abc import Callable

from agent.kubelet.backoff import Backoff
from agent.kubelet.status import Waiting
from agent.runtime.docker import DockerRuntime, ImageNotFound, RuntimeError_

Event = Callable[[str, str, str], None]  # (type, reason, message)
INSPECT_RETRY_SECONDS = 10.0
_INVALID = "invalid reference format"


class ImageUnavailable(Exception):
    def __init__(self, waiting: Waiting, retry_after: float) -> None:
        super().__init__(waiting.message)
        self.waiting, self.retry_after = waiting, retry_after


class ImagePuller:
    def __init__(self, runtime: DockerRuntime, backoff: Backoff, clock: Callable[[], float]) -> None:
        self.runtime, self.backoff, self._clock = runtime, backoff, clock
        self._failed_at: dict[str, float] = {}

    def ensure(self, key: str, image: str, policy: str, event: Event) -> str:
        """The image's ID, pulling as `policy` says; `ImageUnavailable` when it cannot be had (yet)."""
        try:
            present = self.runtime.image_id(image)
        except RuntimeError_ as exc:
            if _INVALID in exc.detail:  # the kubelet parses the reference itself; Docker's words are the same
                why = exc.detail[exc.detail.index(_INVALID):]
                waiting = Waiting("InvalidImageName", f'Failed to apply default image tag "{image}": '
                                                      f'couldn\'t parse image reference "{image}": {why}')
            else:
                waiting = Waiting("ImageInspectError", f'Failed to inspect image "{image}": {exc.detail}')
            event("Warning", "InspectFailed", waiting.message)
            raise ImageUnavailable(waiting, INSPECT_RETRY_SECONDS) from exc
        if policy == "Never":
            if present:
                return present
            raise ImageUnavailable(Waiting("ErrImageNeverPull", f'Container image "{image}" is not present '
                                                                 "with pull policy of Never"), 0.0)
        if policy != "Always" and present:
            event("Normal", "Pulled", f'Container image "{image}" already present on machine')
            return present
        bkey = f"pull/{key}/{image}"
        failed_at = self._failed_at.get(bkey)
        if failed_at is not None and not present:
            left = self.backoff.in_backoff_since(bkey, failed_at)
            if left > 0:
                event("Normal", "BackOff", f'Back-off pulling image "{image}"')
                raise ImageUnavailable(Waiting("ImagePullBackOff", f'Back-off pulling image "{image}"'), left)
        event("Normal", "Pulling", f'Pulling image "{image}"')
        try:
            self.runtime.pull(image)
        except (ImageNotFound, RuntimeError_) as exc:
            self.backoff.next(bkey)
            self._failed_at[bkey] = self._clock()
            if present:
                event("Warning", "Failed", f'Failed to pull image "{image}": {exc}; using the image already '
                                           "present on the node")
                return present
            message = f'Failed to pull image "{image}": {exc}'
            event("Warning", "Failed", message)
            raise ImageUnavailable(Waiting("ErrImagePull", message), self.backoff.delay(bkey)) from exc
        self.backoff.reset(bkey)
        self._failed_at.pop(bkey, None)
        event("Normal", "Pulled", f'Successfully pulled image "{image}"')
        found = self.runtime.image_id(image)
        if not found:
            raise ImageUnavailable(Waiting("ErrImagePull", f'image "{image}" not found after pulling'), 10.0)
        return found

    def forget(self, key: str) -> None:
        for k in [k for k in self._failed_at if k.startswith(f"pull/{key}/")]:
            del self._failed_at[k]
        self.backoff.forget_prefix(f"pull/{key}/")
