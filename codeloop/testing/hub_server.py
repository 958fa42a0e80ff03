"""``HubServer``: a small Hugging Face Hub-compatible server on 127.0.0.1, for tests of sharing.

Layer 2 (testing). It serves the few endpoints ``huggingface_hub`` uses to share tools and agents: repo
creation (a new Space gets a ``README.md`` card and ``.gitattributes``, as on the Hub, so
``metadata_update`` can edit its tags), README metadata validation, preupload + commit (regular uploads, base64 in the NDJSON commit body), repo info with its
file list (``snapshot_download``), file resolve (HEAD and GET), collections, and model info with its
Inference Providers mapping (``GET /api/models/{id}?expand=inferenceProviderMapping``, which
``InferenceClient`` asks before routing to an explicit provider; set ``server.provider_mappings[model_id]``). Repositories live in
memory. Point the client at it with ``HF_ENDPOINT=server.endpoint`` (set before ``huggingface_hub`` is
imported, or pass ``endpoint=``). Unknown routes answer 404 and are recorded in ``server.unknown``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = ["HubServer", "HubRepo"]

_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


@dataclass
class HubRepo:
    repo_id: str
    repo_type: str
    private: bool = False
    files: dict[str, bytes] = field(default_factory=dict)
    commits: list[str] = field(default_factory=list)
    sdk: str | None = None

    @property
    def sha(self) -> str:
        return self.commits[-1] if self.commits else "0" * 40


class HubServer:
    """``with HubServer() as hub:`` ``hub.endpoint`` is its base URL; ``hub.repos[("space", id)]``."""

    def __init__(self, token: str | None = None):
        self.repos: dict[tuple[str, str], HubRepo] = {}
        self.collections: dict[str, dict[str, Any]] = {}
        # model id -> {provider: {"status": "live", "providerId": ..., "task": "conversational"}}
        self.provider_mappings: dict[str, dict[str, dict[str, Any]]] = {}
        self.unknown: list[str] = []
        self.requests: list[str] = []
        self.token = token
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        assert self._httpd is not None, "start the server first"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> HubServer:
        hub = self

        class Handler(_Handler):
            server_ref = hub

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="hub-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def add_collection(self, slug: str, items: list[tuple[str, str]], title: str = "Tools") -> None:
        """A collection of ``(repo_type, repo_id)`` items."""
        self.collections[slug] = {
            "slug": slug,
            "title": title,
            "owner": {"name": slug.split("/")[0], "type": "user"},
            "items": [
                {"_id": f"{i:024x}", "id": repo_id, "type": kind, "position": i}
                for i, (kind, repo_id) in enumerate(items)
            ],
            "lastUpdated": "2026-01-01T00:00:00.000Z",
            "position": 0,
            "private": False,
            "theme": "green",
            "upvotes": 0,
        }

    def commit(self, repo: HubRepo, files: dict[str, bytes], deleted: list[str] = ()) -> str:  # type: ignore[assignment]
        with self._lock:
            for path in deleted:
                repo.files.pop(path, None)
            repo.files.update(files)
            sha = hashlib.sha1(f"{repo.sha}{sorted(repo.files)}{len(repo.commits)}".encode()).hexdigest()
            repo.commits.append(sha)
            return sha


class _Handler(BaseHTTPRequestHandler):
    server_ref: HubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    # -- helpers
    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None, head: bool = False) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body if body is not None else {}).encode()
        self.send_response(status)
        content_type = "application/octet-stream" if isinstance(body, bytes) else "application/json"
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _authorized(self) -> bool:
        token = self.server_ref.token
        return token is None or self.headers.get("Authorization") == f"Bearer {token}"

    def _not_found(self, what: str = "") -> None:
        self.server_ref.unknown.append(f"{self.command} {self.path}")
        self._send(404, {"error": what or "Not found"}, {"X-Error-Code": "RepoNotFound"})

    def _repo(self, kind: str, repo_id: str) -> HubRepo | None:
        return self.server_ref.repos.get((kind, repo_id))

    # -- routing
    def do_HEAD(self) -> None:
        self._route(head=True)

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def do_PUT(self) -> None:
        self._route()

    def _route(self, head: bool = False) -> None:
        path = unquote(urlsplit(self.path).path)
        self.server_ref.requests.append(f"{self.command} {path}")
        if not self._authorized() and path != "/api/validate-yaml":  # the Hub checks YAML without a token
            self._send(401, {"error": "Invalid credentials"})
            return
        parts = path.strip("/").split("/")
        if self.command == "POST" and path == "/api/repos/create":
            return self._create_repo()
        if self.command == "POST" and path == "/api/validate-yaml":
            return self._validate_yaml()
        if parts[:2] == ["api", "collections"] and self.command == "GET":
            slug = "/".join(parts[2:])
            found = self.server_ref.collections.get(slug)
            return self._send(200, found) if found else self._not_found("Collection not found")
        if self.command == "GET" and parts[:2] == ["api", "models"] and len(parts) == 4:
            return self._model_info("/".join(parts[2:]))
        if parts[0] == "api" and len(parts) >= 5 and parts[1] in ("models", "datasets", "spaces"):
            kind = parts[1][:-1]
            for verb in ("preupload", "commit", "revision", "paths-info", "tree"):
                if verb in parts[4:]:
                    i = parts.index(verb, 4)
                    return self._api(kind, "/".join(parts[2:i]), verb, "/".join(parts[i + 1:]))
        if "resolve" in parts:
            i = parts.index("resolve")
            head_parts = parts[:i]
            kind = "model"
            if head_parts and head_parts[0] in ("datasets", "spaces"):
                kind, head_parts = head_parts[0][:-1], head_parts[1:]
            revision, file_path = parts[i + 1], "/".join(parts[i + 2:])
            return self._resolve(kind, "/".join(head_parts), revision, file_path, head)
        self._not_found()

    def _create_repo(self) -> None:
        data = json.loads(self._body() or b"{}")
        kind = data.get("type") or "model"
        repo_id = f"{data['organization']}/{data['name']}" if data.get("organization") else data["name"]
        if "/" not in repo_id:
            repo_id = f"user/{repo_id}"
        url = f"{self.server_ref.endpoint}/{_PREFIX[kind]}{repo_id}"
        if (kind, repo_id) in self.server_ref.repos:
            return self._send(409, {"error": "You already created this repo", "url": url})
        repo = HubRepo(repo_id, kind, bool(data.get("private")), sdk=data.get("sdk"))
        self.server_ref.repos[(kind, repo_id)] = repo
        if kind == "space":  # the Hub's first commit of a Space: a card naming its SDK
            title = repo_id.split("/")[-1]
            card = f"---\ntitle: {title}\nemoji: \U0001f916\nsdk: {repo.sdk or 'static'}\npinned: false\n---\n\n"
            self.server_ref.commit(repo, {"README.md": card.encode(), ".gitattributes": b"*.bin filter=lfs\n"})
        self._send(200, {"url": url, "name": repo_id})

    def _model_info(self, repo_id: str) -> None:
        repo = self._repo("model", repo_id)
        mapping = self.server_ref.provider_mappings.get(repo_id)
        if repo is None and mapping is None:
            return self._not_found("Repository not found")
        info: dict[str, Any] = {"id": repo_id, "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
                                "private": bool(repo and repo.private), "sha": repo.sha if repo else "0" * 40}
        if "inferenceProviderMapping" in (urlsplit(self.path).query or ""):
            info["inferenceProviderMapping"] = mapping or {}
        self._send(200, info)

    def _validate_yaml(self) -> None:
        import yaml

        content = json.loads(self._body() or b"{}").get("content", "")
        head = content.split("---")[1] if content.startswith("---") and content.count("---") >= 2 else ""
        try:
            yaml.safe_load(head)
        except yaml.YAMLError as exc:
            return self._send(400, {"errors": [{"message": str(exc)}], "warnings": []})
        self._send(200, {"errors": [], "warnings": []})

    def _api(self, kind: str, repo_id: str, verb: str, rest: str) -> None:
        repo = self._repo(kind, repo_id)
        if repo is None:
            return self._not_found("Repository not found")
        if verb == "preupload":
            files = json.loads(self._body() or b"{}").get("files", [])
            return self._send(200, {"files": [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None} for f in files
            ]})
        if verb == "commit":
            added: dict[str, bytes] = {}
            deleted: list[str] = []
            for line in self._body().splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                value = item.get("value", {})
                if item.get("key") == "file":
                    added[value["path"]] = base64.b64decode(value["content"])
                elif item.get("key") in ("deletedFile", "deletedFolder"):
                    deleted.append(value["path"])
                elif item.get("key") == "lfsFile":
                    return self._send(400, {"error": "This test server takes regular uploads only."})
            sha = self.server_ref.commit(repo, added, deleted)
            url = f"{self.server_ref.endpoint}/{_PREFIX[kind]}{repo_id}/commit/{sha}"
            return self._send(200, {"commitUrl": url, "commitOid": sha, "pullRequestUrl": None})
        if verb == "revision":
            return self._send(200, {
                "id": repo_id, "sha": repo.sha, "private": repo.private, "sdk": repo.sdk,
                "siblings": [{"rfilename": p} for p in sorted(repo.files)],
                "lastModified": "2026-01-01T00:00:00.000Z", "tags": [],
            })
        self._send(200, [
            {"type": "file", "path": p, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
            for p, b in repo.files.items()
        ])

    def _resolve(self, kind: str, repo_id: str, revision: str, file_path: str, head: bool) -> None:
        repo = self._repo(kind, repo_id)
        if repo is None:
            return self._not_found("Repository not found")
        data = repo.files.get(file_path)
        if data is None:
            return self._send(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"}, head)
        etag = hashlib.sha1(data).hexdigest()
        self._send(200, data, {"ETag": f'"{etag}"', "X-Repo-Commit": repo.sha}, head)
