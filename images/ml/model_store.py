"""Where the enhanced image's model comes from: S3 when MODEL_S3_URI is set, else the local cache, else the image.

A model fetched from S3 is validated, then written to MODEL_CACHE_DIR (atomically), so a task that later
cannot reach S3 still serves the last model it saw. boto3 is optional: the offline base image has none.
"""
import os
import tempfile

from ml import DEGRADED, MLService, Model, ModelError

DEFAULT_CACHE_DIR = "/var/cache/snail-model"


class S3Unavailable(Exception):
    """The model could not be fetched from S3 (no boto3, no network, no object, no permission)."""


def parse_s3_uri(uri):
    """s3://bucket/key -> (bucket, key)."""
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise S3Unavailable(f"MODEL_S3_URI {uri!r} is not s3://BUCKET/KEY")
    bucket, key = uri[5:].split("/", 1)
    if not bucket or not key:
        raise S3Unavailable(f"MODEL_S3_URI {uri!r} is not s3://BUCKET/KEY")
    return bucket, key


def fetch_from_s3(uri, s3_client=None):
    """The object's bytes; S3Unavailable with the reason when that is not possible."""
    bucket, key = parse_s3_uri(uri)
    if s3_client is None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise S3Unavailable("s3 unavailable (boto3 not installed in the image)") from None
        # Short timeouts: start-up must not hang on an unreachable endpoint; the cache is the fallback.
        config = Config(connect_timeout=3, read_timeout=5, retries={"total_max_attempts": 2})
        s3_client = boto3.client("s3", config=config)
    try:
        return s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as e:  # botocore raises many unrelated types; all mean "not from S3 this time"
        raise S3Unavailable(f"s3 unreachable ({type(e).__name__}: {e})") from e


class CachedModelService(MLService):
    """MLService whose model comes from S3 -> MODEL_CACHE_DIR -> the image, and says which in model_source."""

    def __init__(self, env=None, model_path=None, s3_client=None):
        self._env = os.environ if env is None else env
        self._s3_client = s3_client
        self.cache_dir = self._env.get("MODEL_CACHE_DIR", DEFAULT_CACHE_DIR)
        super().__init__(self._env, model_path)

    def load_model(self):
        """Try S3 (when configured), then the cache dir, then the model bundled in the image."""
        uri = self._env.get("MODEL_S3_URI")
        cached = os.path.join(self.cache_dir, "model.json")
        if uri:
            try:
                model = self._refresh_cache(uri, cached)
                self.source = uri
                return model
            except (S3Unavailable, ModelError) as e:
                self.status = DEGRADED
                self.reasons.append(f"{e}, using local cache dir {self.cache_dir}")
        if os.path.exists(cached):
            self.source = f"cache:{cached}"
            return Model.load(cached)
        if uri:
            self.reasons.append(f"no model in {self.cache_dir}, using the model bundled in the image")
        self.source = f"image:{self.model_path}"
        return super().load_model()

    def _refresh_cache(self, uri, cached):
        data = fetch_from_s3(uri, self._s3_client)
        os.makedirs(self.cache_dir, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.cache_dir, prefix=".model-", suffix=".json")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            model = Model.load(tmp)  # never cache a model that does not load
            os.replace(tmp, cached)
            return model
        except ModelError as e:
            raise ModelError(f"model from {uri} rejected: {e}") from e
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
