"""The object engine: buckets, objects, the bucket index and identities over a storage backend."""
