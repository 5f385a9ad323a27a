"""The dense index in Milvus: the same interface as :class:`~embeddings.vector_index.VectorIndex`
(cosine search over unit vectors keyed by chunk ids), kept in a Milvus collection that several
serving processes can share.

``uri`` is either a Milvus Lite file (``<index_dir>/milvus.db``; a folder that Milvus Lite keeps
in-process, one process at a time) or a server (``http://host:19530``: Milvus standalone,
a cluster, Zilliz Cloud with ``token``). The client code is the same for both.

Needs the ``milvus`` extra (``pip install 'verbatim[milvus]'``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from embeddings.index_params import IndexParams

if TYPE_CHECKING:
    from pymilvus import MilvusClient

log = logging.getLogger(__name__)

MilvusIndexKind = Literal["hnsw", "flat"]
ConsistencyLevel = Literal["Strong", "Session", "Bounded", "Eventually"]

_SERVER_SCHEMES = ("http://", "https://", "tcp://", "unix:")
_MAX_TOPK = 16384  # Milvus' limit on a search's k (and on query offset + limit)


class MilvusIndexError(RuntimeError):
    """The Milvus collection cannot be used as it is; the message says why and what to do."""


class _DropLiteIteratorWarning(logging.Filter):
    """pymilvus warns on every query iterator that Milvus Lite cannot hand out a server
    timestamp and that it uses the client's instead; that is expected and harmless there."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "failed to get mvccTs" not in record.getMessage()


logging.getLogger("pymilvus.client.iterator.query_iterator").addFilter(_DropLiteIteratorWarning())


def is_lite_uri(uri: str) -> bool:
    """Whether ``uri`` names a Milvus Lite file rather than a server."""
    return not uri.startswith(_SERVER_SCHEMES)


def _batches(n: int, size: int) -> Iterable[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


class MilvusIndex:
    """Cosine (inner product over unit vectors) search in a Milvus collection with an INT64
    primary key ``id`` (the chunk id) and a ``vector`` FLOAT_VECTOR field, under an HNSW (or
    FLAT) index with metric IP.

    Cheap to construct; the connection and the collection are opened by :meth:`warm_up` or
    by the first call that needs them, and the collection is created (empty) if missing.
    :meth:`add` upserts by id, so several processes may add the same chunks; :meth:`remove`
    deletes by id. With the default ``consistency="Strong"`` every search and count sees all
    writes acknowledged before it, from any client; ``"Session"`` is cheaper on a server and
    still sees this client's own writes."""

    def __init__(
        self,
        uri: str,
        collection: str = "verbatim_chunks",
        dimension: int = 384,
        index: MilvusIndexKind = "hnsw",
        ef_search: int = IndexParams.ef_search,
        token: str | None = None,
        *,
        hnsw_m: int = IndexParams.hnsw_m,
        ef_construction: int = 200,
        consistency: ConsistencyLevel = "Strong",
        batch_size: int = 2000,
        timeout: float | None = None,
    ):
        if index not in ("hnsw", "flat"):
            raise ValueError(f"unknown Milvus index {index!r}; use hnsw or flat")
        if is_lite_uri(uri) and not uri.endswith(".db"):
            raise ValueError(
                f"Milvus URI {uri!r} is neither a server (http://host:19530) "
                "nor a Milvus Lite file ending in .db"
            )
        self.uri, self.collection = uri, collection
        self.kind: MilvusIndexKind = index
        self.ef_search, self.token = ef_search, token
        self.hnsw_m, self.ef_construction = hnsw_m, ef_construction
        self.consistency, self.batch_size, self.timeout = consistency, batch_size, timeout
        self._dimension = dimension
        self._client: MilvusClient | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MilvusIndex({self.uri!r}, {self.collection!r}, {self._dimension}, {self.kind!r})"

    # -- connection and collection ---------------------------------------------------------

    @property
    def lite(self) -> bool:
        return is_lite_uri(self.uri)

    def warm_up(self) -> MilvusIndex:
        """Connect, create the collection if it is missing, check its dimension, load it."""
        self._connected()
        return self

    def _connected(self) -> MilvusClient:
        if self._client is not None:
            return self._client
        with self._lock:
            if self._client is None:
                client = self._connect()
                try:
                    self._open_collection(client)
                except BaseException:
                    client.close()
                    raise
                self._client = client
        return self._client

    def _connect(self) -> MilvusClient:
        try:
            from pymilvus import MilvusClient
            from pymilvus.exceptions import MilvusException
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise MilvusIndexError(
                "the Milvus vector store needs pymilvus and milvus-lite: "
                "pip install 'verbatim[milvus]'"
            ) from exc
        if self.lite:
            Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
        try:
            return MilvusClient(uri=self.uri, token=self.token or "", timeout=self.timeout)
        except MilvusException as exc:
            hint = (
                " (a Milvus Lite file can be open in one process at a time: is another "
                "Verbatim process using it? Several processes need a Milvus server)"
                if self.lite
                else ""
            )
            raise MilvusIndexError(f"cannot open Milvus at {self.uri}: {exc}{hint}") from exc

    def _open_collection(self, client: MilvusClient) -> None:
        if not client.has_collection(self.collection):
            self._create(client)
            return
        description = client.describe_collection(self.collection)
        fields = {f["name"]: f for f in description["fields"]}
        vector = fields.get("vector")
        key = fields.get("id")
        if vector is None or key is None or not key.get("is_primary"):
            raise MilvusIndexError(
                f"Milvus collection {self.collection!r} at {self.uri} is not a Verbatim "
                "collection (it needs an INT64 primary key `id` and a `vector` field); "
                "drop it or choose another collection name"
            )
        dim = int(vector["params"]["dim"])
        if dim != self._dimension:
            raise MilvusIndexError(
                f"Milvus collection {self.collection!r} holds {dim}-d vectors, not "
                f"{self._dimension}-d ones: it was built with another embedding model "
                "(run `verbatim ingest --rebuild`, or choose another collection name)"
            )
        client.load_collection(self.collection)

    def _create(self, client: MilvusClient) -> None:
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self._dimension)
        params = client.prepare_index_params()
        if self.kind == "hnsw":
            params.add_index(
                field_name="vector",
                index_type="HNSW",
                metric_type="IP",
                params={"M": self.hnsw_m, "efConstruction": self.ef_construction},
            )
        else:
            params.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
        client.create_collection(
            self.collection,
            schema=schema,
            index_params=params,
            consistency_level=self.consistency,
        )
        client.load_collection(self.collection)
        log.info(
            "created Milvus collection %r (%d-d, %s, IP) at %s",
            self.collection, self._dimension, self.kind.upper(), self.uri,
        )  # fmt: skip

    def close(self) -> None:
        """Close the connection; for a Milvus Lite file also stop its in-process server, so
        the file is released (another process may then open it). Every MilvusIndex of this
        process on that file shares the server, so close them all together."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
        if self.lite:
            try:
                from milvus_lite.server_manager import server_manager_instance
            except ImportError:  # pragma: no cover
                return
            server_manager_instance.release_server(self.uri)

    def flush(self) -> None:
        """Seal what was written into segments (a bulk load's end; not needed for searches
        to see writes, and rate-limited on a server, so not called after every change)."""
        self._connected().flush(self.collection, timeout=self.timeout)

    # -- the VectorIndex interface ---------------------------------------------------------

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        ids: np.ndarray | Sequence[int] | None = None,
        *,
        uri: str,
        collection: str = "verbatim_chunks",
        index: MilvusIndexKind = "hnsw",
        ef_search: int = IndexParams.ef_search,
        token: str | None = None,
        **options: Any,
    ) -> MilvusIndex:
        """(Re)create the collection and load ``vectors`` under ``ids`` (default: row
        numbers): a full load. Anything the collection held is dropped, so only the one
        process that ingests should call this; serving processes :meth:`sync`."""
        if isinstance(ids, str):
            raise TypeError("MilvusIndex.build(vectors, ids, uri=...): the index kind is `index=`")
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise ValueError("vectors must be a 2-d array")
        dim = options.pop("dimension", vectors.shape[1])
        if dim != vectors.shape[1]:
            raise ValueError(f"vectors are {vectors.shape[1]}-d, not {dim}-d")
        self = cls(uri, collection, dim, index, ef_search, token, **options)
        client = self._connect()
        try:
            if client.has_collection(collection):
                client.drop_collection(collection)
            self._create(client)
        except BaseException:
            client.close()
            raise
        self._client = client
        self.add(vectors, np.arange(len(vectors)) if ids is None else np.asarray(ids))
        self.flush()
        return self

    @property
    def size(self) -> int:
        """Live entities (deleted ones not counted), as of now."""
        rows = self._connected().query(
            self.collection,
            filter="",
            output_fields=["count(*)"],
            consistency_level=self.consistency,
            timeout=self.timeout,
        )
        return int(rows[0]["count(*)"])

    @property
    def dimension(self) -> int:
        return self._dimension

    def add(self, vectors: np.ndarray, ids: np.ndarray | Sequence[int]) -> None:
        """Upsert: an id already stored gets this vector, so adding twice is harmless."""
        vectors = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if not len(vectors):
            return
        if len(ids) != len(vectors):
            raise ValueError(f"{len(vectors)} vectors but {len(ids)} ids")
        if vectors.shape[1] != self._dimension:
            raise ValueError(f"vectors are {vectors.shape[1]}-d; the index is {self._dimension}-d")
        if len(np.unique(ids)) != len(ids):
            raise ValueError("ids must be distinct")
        client = self._connected()
        for part in _batches(len(ids), self.batch_size):
            rows = [
                {"id": int(i), "vector": v}
                for i, v in zip(ids[part].tolist(), vectors[part], strict=True)
            ]
            client.upsert(self.collection, rows, timeout=self.timeout)

    def remove(self, ids: Iterable[int]) -> None:
        """Delete these ids (ids not stored are ignored)."""
        ids = [int(i) for i in ids]
        if not ids:
            return
        client = self._connected()
        for part in _batches(len(ids), self.batch_size):
            client.delete(self.collection, ids=ids[part], timeout=self.timeout)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, ids) for each query row, best first; scores are inner
        products; missing slots have id -1 (score 0). The width is ``min(k, hits)``, at
        least 1: ``min(k, size)`` unless the approximate index found fewer."""
        query = np.ascontiguousarray(np.atleast_2d(query), dtype=np.float32)
        if not len(query):
            return np.zeros((0, 1), dtype=np.float32), np.full((0, 1), -1, dtype=np.int64)
        k = max(1, min(int(k), _MAX_TOPK))
        params: dict[str, Any] = {"metric_type": "IP"}
        if self.kind == "hnsw":
            params["params"] = {"ef": max(self.ef_search, k)}  # Milvus needs ef >= k
        results = self._connected().search(
            self.collection,
            data=list(query),
            limit=k,
            anns_field="vector",
            search_params=params,
            output_fields=["id"],
            consistency_level=self.consistency,
            timeout=self.timeout,
        )
        width = max(1, min(k, max((len(hits) for hits in results), default=0)))
        scores = np.zeros((len(query), width), dtype=np.float32)
        found = np.full((len(query), width), -1, dtype=np.int64)
        for row, hits in enumerate(results):
            for col, hit in enumerate(list(hits)[:width]):
                scores[row, col] = hit["distance"]
                found[row, col] = hit["id"]
        return scores, found

    # -- keeping a shared collection in step -----------------------------------------------

    def ids(self) -> np.ndarray:
        """Every stored id, sorted (read with a query iterator, ``batch_size`` at a time)."""
        iterator = self._connected().query_iterator(
            self.collection,
            batch_size=min(self.batch_size * 4, _MAX_TOPK),
            filter="",
            output_fields=["id"],
            consistency_level=self.consistency,
            timeout=self.timeout,
        )
        found: list[int] = []
        try:
            while batch := iterator.next():
                found.extend(int(row["id"]) for row in batch)
        finally:
            iterator.close()
        return np.unique(np.asarray(found, dtype=np.int64))

    def sync(self, vectors: np.ndarray, ids: np.ndarray | Sequence[int]) -> tuple[int, int]:
        """Make the collection hold exactly ``ids``: upsert the rows of ``vectors`` whose id
        is missing, delete stored ids not among ``ids``; (added, removed). Ids already
        stored are trusted to hold the same vector (chunk ids are never reused by a store;
        after a rebuild or a change of embedding model, call :meth:`build` instead)."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        stored = self.ids()
        missing = ~np.isin(ids, stored)
        gone = np.setdiff1d(stored, ids)
        if missing.any():
            self.add(np.atleast_2d(vectors)[missing], ids[missing])
        self.remove(gone.tolist())
        if missing.any() or len(gone):
            log.info(
                "Milvus collection %r synced: +%d -%d", self.collection, missing.sum(), len(gone)
            )
        return int(missing.sum()), len(gone)
