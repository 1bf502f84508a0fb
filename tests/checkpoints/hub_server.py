"""A loopback HTTP server with the Hugging Face Hub's file layout, for download tests without the internet.

It serves the endpoints `huggingface_hub.snapshot_download` uses (point $HF_ENDPOINT at `url`):

    GET  /api/models/<owner>/<repo>/revision/<rev>             repository info: the commit of <rev>
    GET  /api/models/<owner>/<repo>/tree/<commit>[/<path>]     file listing (recursive)
    HEAD /<owner>/<repo>/resolve/<rev>/<path>                  file metadata (commit, ETag, size)
    GET  /<owner>/<repo>/resolve/<rev>/<path>                  file contents
"""

import hashlib
import http.server
import json
import threading
import urllib.parse


class HubRepository:
  """Commits of one repository: {commit: {path: bytes}} and named revisions (branches, tags) -> commit."""

  def __init__(self, repo_id: str):
    self.repo_id = repo_id
    self.commits: dict[str, dict[str, bytes]] = {}
    self.refs: dict[str, str] = {}

  def commit(self, files: dict[str, bytes], *refs: str) -> str:
    commit = hashlib.sha1(json.dumps(sorted((p, hashlib.sha256(b).hexdigest()) for p, b in files.items()))
                          .encode()).hexdigest()
    self.commits[commit] = dict(files)
    for ref in refs:
      self.refs[ref] = commit
    return commit

  def resolve(self, revision: str) -> str | None:
    revision = urllib.parse.unquote(revision)
    if revision in self.commits:
      return revision
    return self.refs.get(revision)


class HubServer:
  """``with HubServer(repository) as server:`` serves on 127.0.0.1:<free port>; `requests` counts the calls."""

  def __init__(self, *repositories: HubRepository):
    self.repositories = {repo.repo_id: repo for repo in repositories}
    self.requests: list[str] = []
    server = self

    class Handler(http.server.BaseHTTPRequestHandler):
      protocol_version = 'HTTP/1.1'

      def log_message(self, *args):  # Quiet.
        pass

      def do_HEAD(self):  # pylint: disable=invalid-name
        self._serve(with_body=False)

      def do_GET(self):  # pylint: disable=invalid-name
        self._serve(with_body=True)

      def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None, with_body: bool = True):
        self.send_response(status)
        for key, value in (headers or {}).items():
          self.send_header(key, value)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if with_body:
          self.wfile.write(body)

      def _json(self, status: int, value, with_body: bool = True, headers=None):
        self._send(status, json.dumps(value).encode(), {'Content-Type': 'application/json', **(headers or {})},
                   with_body)

      def _serve(self, with_body: bool):
        path = urllib.parse.urlparse(self.path).path
        server.requests.append(f'{self.command} {path}')
        parts = [urllib.parse.unquote(p) for p in path.strip('/').split('/')]
        if parts[:2] == ['api', 'models'] and len(parts) >= 6:
          repo = server.repositories.get(f'{parts[2]}/{parts[3]}')
          if repo is None:
            return self._json(404, {'error': 'Repository not found'}, with_body,
                              {'X-Error-Code': 'RepoNotFound'})
          commit = repo.resolve(parts[5])
          if commit is None:
            return self._json(404, {'error': 'Invalid rev id'}, with_body, {'X-Error-Code': 'RevisionNotFound'})
          if parts[4] == 'revision':
            siblings = [{'rfilename': name} for name in sorted(repo.commits[commit])]
            return self._json(200, {'id': repo.repo_id, 'modelId': repo.repo_id, 'sha': commit,
                                    'siblings': siblings, 'private': False}, with_body)
          if parts[4] == 'tree':
            prefix = '/'.join(parts[6:])
            entries = [{'type': 'file', 'oid': hashlib.sha1(data).hexdigest(), 'size': len(data), 'path': name,
                        'lfs': {'oid': hashlib.sha256(data).hexdigest(), 'size': len(data), 'pointerSize': 130}}
                       for name, data in sorted(repo.commits[commit].items())
                       if not prefix or name.startswith(prefix + '/')]
            return self._json(200, entries, with_body)
        if len(parts) >= 5 and parts[2] == 'resolve':
          repo = server.repositories.get(f'{parts[0]}/{parts[1]}')
          commit = repo.resolve(parts[3]) if repo else None
          name = '/'.join(parts[4:])
          if commit is None:
            return self._json(404, {'error': 'not found'}, with_body,
                              {'X-Error-Code': 'RepoNotFound' if repo is None else 'RevisionNotFound'})
          data = repo.commits[commit].get(name)
          if data is None:
            return self._json(404, {'error': 'Entry not found'}, with_body, {'X-Error-Code': 'EntryNotFound'})
          etag = hashlib.sha256(data).hexdigest()
          return self._send(200, data, {'X-Repo-Commit': commit, 'ETag': f'"{etag}"', 'X-Linked-Etag': f'"{etag}"',
                                        'X-Linked-Size': str(len(data)),
                                        'Content-Type': 'application/octet-stream'}, with_body)
        return self._json(404, {'error': f'no route {path}'}, with_body)

    self._server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    self.url = f'http://127.0.0.1:{self._server.server_address[1]}'
    self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

  def __enter__(self) -> 'HubServer':
    self._thread.start()
    return self

  def __exit__(self, *exc_info) -> None:
    self._server.shutdown()
    self._server.server_close()
