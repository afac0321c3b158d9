"""Run folders on the Hub: pushed as dataset repos with huggingface_hub, loaded back by repo id.

The token is huggingface_hub's business: ``HF_TOKEN``, ``huggingface-cli login`` or an `HfApi(token=...)` the
caller builds. hf-attrib never reads, prints or writes it. Without the Hub (offline, no network) these calls
raise `HubUnavailableError`, one line saying what failed; nothing is half-uploaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

IGNORED = [".*", "**/.*"]  # staging folders of interrupted saves, editor files


class HubUnavailableError(ValueError):
    """The Hub could not be reached or refused the request."""


def push_run(run_dir: str | Path, repo_id: str, *, private: bool = False, api: Any = None,
             commit_message: str | None = None) -> str:
    """Create the dataset repo `repo_id` (if needed) and upload the run folder `run_dir` to it; returns the
    repo's URL. `api`: an `huggingface_hub.HfApi` (default: one with the usual token lookup)."""
    folder = Path(run_dir)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    if not any(folder.glob("**/result.json")):
        raise ValueError(f"{folder} holds no attribution result (no result.json): nothing to push")
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    try:
        url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="dataset", ignore_patterns=IGNORED,
                          commit_message=commit_message or f"hf-attrib results from {folder.name}")
    except _hub_errors() as error:
        raise HubUnavailableError(f"could not push {folder} to the dataset repo {repo_id!r}: "
                                  f"{_reason(error)}") from None
    return str(url)


def download_run(repo_id: str, *, revision: str | None = None) -> Path:
    """The local copy (HF cache) of the run folder in dataset repo `repo_id`."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, repo_type="dataset", revision=revision))
    except _hub_errors() as error:
        raise HubUnavailableError(f"{repo_id!r} is not a local folder, and the Hub dataset repo of that name "
                                  f"could not be fetched: {_reason(error)}") from None


def _hub_errors() -> tuple[type[BaseException], ...]:
    """What a failed Hub call raises: huggingface_hub's errors are OSErrors; the HTTP client's transport
    errors (no network) are its own."""
    from huggingface_hub.errors import HFValidationError

    errors: list[type[BaseException]] = [OSError, HFValidationError]
    for client in ("httpx2", "httpx"):
        try:
            errors.append(__import__(client).HTTPError)
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


def _reason(error: Exception) -> str:
    """One line: the error's kind and first line (huggingface_hub's messages carry no token)."""
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    if isinstance(error, OfflineModeIsEnabled):
        return "offline mode is on (HF_HUB_OFFLINE=1)"
    if isinstance(error, LocalEntryNotFoundError):
        return "not in the local cache and the Hub is unreachable (offline?)"
    first = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {first}"[:300]
