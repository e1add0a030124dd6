"""A small Hub-compatible HTTP server for the tests, on 127.0.0.1 (standard library only).

It answers the routes ``huggingface_hub`` calls to create repos, commit files (regular and
LFS), resolve revisions, list trees and download files, keeping every commit in memory so old
revisions stay downloadable. Clients point at it with ``HF_ENDPOINT``; ``HF_HUB_DISABLE_XET=1``
keeps uploads on the plain LFS protocol. ``HubServer.fail_uploads`` makes the server drop every
LFS upload, as a server going away in the middle of a push would; ``HubServer.errors`` makes it
answer repo creation (``"create"``), commits (``"commit"``) or file downloads (``"resolve"``)
with an HTTP error, as the Hub does for a bad token; ``HubServer.drop_commits`` makes it apply a commit and then drop the connection
without answering, as when the connection is lost after the Hub received the commit.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".npz", ".parquet", ".arrow",
                ".wav", ".flac", ".png", ".zip", ".gz")  # what the Hub's default .gitattributes sends to LFS
TYPE_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
USER = "tester"  # whose token the tests use: repos created without a namespace go to this user's


@dataclass
class Repo:
    kind: str
    commits: dict[str, dict[str, dict]] = field(default_factory=dict)  # sha → path → {"data", "lfs"}
    branches: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> str | None:
        revision = unquote(revision)
        if revision in self.branches:
            return self.branches[revision]
        return revision if revision in self.commits else None


def git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubServer:
    def __init__(self):
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.fail_uploads = False
        self.errors: dict[str, tuple[int, str]] = {}  # "create" / "commit" / "resolve" → (status, X-Error-Message)
        self.drop_commits = False
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def start(self) -> "HubServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # ------------------------------------------------------------------ repository state

    def create(self, kind: str, repo_id: str) -> bool:
        with self._lock:
            if (kind, repo_id) in self.repos:
                return False
            repo = Repo(kind)
            sha = self._new_sha(repo_id, "initial")
            repo.commits[sha] = {}
            repo.branches["main"] = sha
            self.repos[(kind, repo_id)] = repo
            return True

    def commit(self, kind: str, repo_id: str, revision: str, operations: list[dict]) -> str:
        with self._lock:
            repo = self.repos[(kind, repo_id)]
            parent = repo.resolve(revision) or repo.branches["main"]
            files = dict(repo.commits[parent])
            for operation in operations:
                key, value = operation["key"], operation["value"]
                if key == "file":
                    files[value["path"]] = {"data": base64.b64decode(value["content"]), "lfs": None}
                elif key == "lfsFile":
                    files[value["path"]] = {"data": self.lfs[value["oid"]], "lfs": value["oid"]}
                elif key == "deletedFile":
                    files.pop(value["path"], None)
                elif key == "deletedFolder":
                    prefix = value["path"].rstrip("/") + "/"
                    files = {p: f for p, f in files.items() if not p.startswith(prefix)}
            sha = self._new_sha(repo_id, json.dumps(sorted(files)) + str(len(repo.commits)))
            repo.commits[sha] = files
            branch = unquote(revision)
            repo.branches[branch if branch in repo.branches or branch not in repo.commits else "main"] = sha
            return sha

    @staticmethod
    def _new_sha(repo_id: str, salt: str) -> str:
        return hashlib.sha1(f"{repo_id}:{salt}:{time.time_ns()}".encode()).hexdigest()

    # ------------------------------------------------------------------ HTTP

    def _handler(server):  # noqa: N805 - the handler closes over the server
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            # -- helpers
            def body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def send(self, status: int, payload=None, headers: dict | None = None, raw: bytes | None = None):
                data = raw if raw is not None else (b"" if payload is None else json.dumps(payload).encode())
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if raw is None else "application/octet-stream")
                for name, value in (headers or {}).items():
                    self.send_header(name, str(value))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def refuse(self, route: str) -> bool:
                """Answer with the error set for ``route`` in ``server.errors``; ``True`` if it did."""
                if route not in server.errors:
                    return False
                self.body()
                status, message = server.errors[route]
                self.send(status, {"error": message}, {"X-Error-Message": message})
                return True

            def not_found(self, code: str, message: str):
                self.send(404, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message})

            def repo_or_404(self, kind: str, repo_id: str) -> Repo | None:
                repo = server.repos.get((kind, repo_id))
                if repo is None:
                    self.not_found("RepoNotFound", f"Repository {repo_id} not found")
                return repo

            def sha_or_404(self, repo: Repo, revision: str) -> str | None:
                sha = repo.resolve(revision)
                if sha is None:
                    self.not_found("RevisionNotFound", f"Invalid rev id: {unquote(revision)}")
                return sha

            # -- verbs
            def do_HEAD(self):
                self.route()

            def do_GET(self):
                self.route()

            def do_POST(self):
                self.route()

            def do_PUT(self):
                self.route()

            def do_DELETE(self):
                self.route()

            def route(self):
                url = urlparse(self.path)
                path = url.path
                server.requests.append(f"{self.command} {path}")
                if self.command == "PUT" and path.startswith("/__lfs/"):
                    return self.lfs_put(path.rsplit("/", 1)[1])
                if path == "/api/repos/create" and self.command == "POST":
                    return self.create_repo()
                if path == "/api/repos/delete" and self.command == "DELETE":
                    request = json.loads(self.body() or b"{}")
                    repo_id = "/".join(filter(None, [request.get("organization"), request["name"]]))
                    server.repos.pop((request.get("type") or "model", repo_id), None)
                    return self.send(200, {})
                if path == "/api/validate-yaml":
                    self.body()
                    return self.send(200, {"errors": [], "warnings": []})
                if path == "/api/whoami-v2":
                    return self.send(200, {"name": USER, "type": "user", "orgs": [], "auth": {"type": "access_token"}})
                match = re.fullmatch(r"/api/(model|dataset|space)s/([^/]+/[^/]+)(?:/(.*))?", path)
                if match:
                    return self.api(match.group(1), match.group(2), match.group(3) or "", url)
                match = re.fullmatch(r"/(datasets/|spaces/)?([^/]+/[^/]+)\.git/info/lfs/objects/batch", path)
                if match and self.command == "POST":
                    return self.lfs_batch()
                match = re.fullmatch(r"/(datasets/|spaces/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
                if match and self.command in ("GET", "HEAD"):
                    kind = {"datasets/": "dataset", "spaces/": "space"}.get(match.group(1) or "", "model")
                    return self.resolve_file(kind, match.group(2), match.group(3), unquote(match.group(4)))
                self.body()
                self.send(404, {"error": f"no route for {self.command} {path}"})

            def create_repo(self):
                if self.refuse("create"):
                    return
                request = json.loads(self.body() or b"{}")
                kind = request.get("type") or "model"
                repo_id = f"{request.get('organization') or USER}/{request['name']}"  # no namespace: the user's
                created = server.create(kind, repo_id)
                self.send(200 if created else 409, {"url": f"{server.url}/{TYPE_PREFIX[kind]}{repo_id}",
                                                     "error": None if created else "You already created this repo"})

            def api(self, kind: str, repo_id: str, rest: str, url):
                repo = self.repo_or_404(kind, repo_id)
                if repo is None:
                    self.body()
                    return
                if rest == "" or rest.startswith("revision/"):
                    sha = self.sha_or_404(repo, rest[len("revision/"):] if rest else "main")
                    if sha:
                        self.send(200, {"id": repo_id, "modelId": repo_id, "sha": sha, "private": False,
                                        "siblings": [{"rfilename": p} for p in sorted(repo.commits[sha])],
                                        "tags": [], "downloads": 0, "likes": 0})
                    return
                if rest.startswith("preupload/"):
                    request = json.loads(self.body())
                    files = [{"path": f["path"], "shouldIgnore": False,
                              "uploadMode": "lfs" if f["path"].endswith(LFS_SUFFIXES) or f["size"] > 1_000_000
                              else "regular"} for f in request["files"]]
                    return self.send(200, {"files": files})
                if rest.startswith("commit/"):
                    if self.refuse("commit"):
                        return
                    lines = [json.loads(line) for line in self.body().decode().splitlines() if line.strip()]
                    missing = [op["value"]["oid"] for op in lines if op["key"] == "lfsFile"
                               and op["value"]["oid"] not in server.lfs]
                    if missing:
                        return self.send(422, {"error": f"LFS objects not uploaded: {missing}"})
                    revision = rest[len("commit/"):]
                    sha = server.commit(kind, repo_id, revision, lines)
                    if server.drop_commits:  # committed, but the answer never reaches the client
                        self.close_connection = True
                        self.connection.close()
                        return
                    return self.send(200, {"commitOid": sha, "commitUrl": f"{server.url}/{repo_id}/commit/{sha}",
                                           "pullRequestUrl": None})
                if rest.startswith("tree/"):
                    revision, _, folder = rest[len("tree/"):].partition("/")
                    sha = self.sha_or_404(repo, revision)
                    if sha:
                        recursive = parse_qs(url.query).get("recursive", ["false"])[0].lower() == "true"
                        entries = self.tree(repo.commits[sha], unquote(folder), recursive)
                        if entries is None:
                            return self.not_found("EntryNotFound", f"{folder} does not exist on {revision}")
                        self.send(200, entries)
                    return
                if rest.startswith("paths-info/"):
                    sha = self.sha_or_404(repo, rest[len("paths-info/"):])
                    form = parse_qs(self.body().decode())
                    if sha:
                        files = repo.commits[sha]
                        self.send(200, [self.entry(p, files[p]) for p in form.get("paths", []) if p in files])
                    return
                if rest == "refs":
                    return self.send(200, {"branches": [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": s}
                                                        for n, s in repo.branches.items()], "tags": [], "converts": []})
                self.body()
                self.send(404, {"error": f"no route for {rest}"})

            @staticmethod
            def entry(path: str, file: dict) -> dict:
                entry = {"type": "file", "path": path, "size": len(file["data"]), "oid": git_blob_sha(file["data"])}
                if file["lfs"]:
                    entry["lfs"] = {"oid": file["lfs"], "size": len(file["data"]), "pointerSize": 134}
                return entry

            def tree(self, files: dict, folder: str, recursive: bool):
                prefix = folder.strip("/") + "/" if folder.strip("/") else ""
                inside = {p: f for p, f in files.items() if p.startswith(prefix)}
                if prefix and not inside:
                    return None
                entries, folders = [], set()
                for path, file in sorted(inside.items()):
                    rest = path[len(prefix):]
                    if "/" in rest and not recursive:
                        folders.add(prefix + rest.split("/", 1)[0])
                        continue
                    if "/" in rest:
                        parts = rest.split("/")[:-1]
                        folders.update(prefix + "/".join(parts[: i + 1]) for i in range(len(parts)))
                    entries.append(self.entry(path, file))
                return [{"type": "directory", "path": f, "oid": hashlib.sha1(f.encode()).hexdigest()}
                        for f in sorted(folders)] + entries

            def lfs_batch(self):
                request = json.loads(self.body())
                objects = []
                for obj in request["objects"]:
                    item = {"oid": obj["oid"], "size": obj["size"]}
                    if obj["oid"] not in server.lfs:
                        item["actions"] = {"upload": {"href": f"{server.url}/__lfs/{obj['oid']}", "header": {}}}
                    objects.append(item)
                self.send(200, {"transfer": "basic", "objects": objects})

            def lfs_put(self, oid: str):
                if server.fail_uploads:  # the server goes away: drop the connection without an answer
                    self.close_connection = True
                    self.connection.close()
                    return
                data = self.body()
                if hashlib.sha256(data).hexdigest() != oid:
                    return self.send(400, {"error": "sha256 mismatch"})
                server.lfs[oid] = data
                self.send(200, {})

            def resolve_file(self, kind: str, repo_id: str, revision: str, path: str):
                if self.refuse("resolve"):
                    return
                repo = self.repo_or_404(kind, repo_id)
                if repo is None:
                    return
                sha = self.sha_or_404(repo, revision)
                if sha is None:
                    return
                file = repo.commits[sha].get(path)
                if file is None:
                    return self.not_found("EntryNotFound", f"{path} does not exist on {revision}")
                data = file["data"]
                etag = file["lfs"] or git_blob_sha(data)
                headers = {"X-Repo-Commit": sha, "ETag": f'"{etag}"', "Accept-Ranges": "bytes"}
                if file["lfs"]:
                    headers.update({"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": len(data)})
                status = 200
                byte_range = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
                if byte_range and self.command == "GET":
                    start = int(byte_range.group(1))
                    end = int(byte_range.group(2)) if byte_range.group(2) else len(data) - 1
                    headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
                    data, status = data[start : end + 1], 206
                self.send(status, headers=headers, raw=data)

        return Handler
