"""Access decisions, made once in the engine for every front end and service.

``principal`` says who calls, ``acl`` is the pure ACL evaluation, ``decision``
applies it to buckets and objects (the only I/O: reading a bucket's ACL).
"""
