"""``atonix-cli user ...`` and ``admin-credentials``: identities on the configured backend."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import quote

from engine import ADMIN_UID, AccessKey, Engine, EngineError
from gateway.cli.options import settings_from
from gateway.cli.session import CLI, with_engine
from gateway.server.config import Settings

T = TypeVar("T")


def add_parser(sub, backend_options: Callable[[argparse.ArgumentParser], None]) -> None:
    user = sub.add_parser("user", help="manage users and access keys")
    actions = user.add_subparsers(dest="action", required=True)

    create = actions.add_parser("create", help="create a user (and its first access key)")
    create.add_argument("uid")
    create.add_argument("--display-name", required=True)
    create.add_argument("--email", default="")
    create.add_argument("--access-key", help="use this access key id instead of a generated one")
    create.add_argument("--secret", help="use this secret instead of a generated one")
    create.set_defaults(func=cmd_create)

    lst = actions.add_parser("list", help="list users")
    lst.set_defaults(func=cmd_list)

    show = actions.add_parser("show", help="show a user and its keys (with secrets)")
    show.add_argument("uid")
    show.set_defaults(func=cmd_show)

    delete = actions.add_parser("delete", help="delete a user and its keys")
    delete.add_argument("uid")
    delete.set_defaults(func=cmd_delete)

    key_add = actions.add_parser("key-add", help="add an access key to a user")
    key_add.add_argument("uid")
    key_add.add_argument("--access-key")
    key_add.add_argument("--secret")
    key_add.set_defaults(func=cmd_key_add)

    key_rm = actions.add_parser("key-remove", help="remove an access key from a user")
    key_rm.add_argument("uid")
    key_rm.add_argument("access_key")
    key_rm.set_defaults(func=cmd_key_remove)

    mfa_add = actions.add_parser("mfa-create", help="give a user a TOTP device (MFA delete)")
    mfa_add.add_argument("uid")
    mfa_add.add_argument("--serial", required=True, help="the device's serial (any name)")
    mfa_add.add_argument("--seed", help="base32 TOTP seed (default: a new random one)")
    mfa_add.set_defaults(func=cmd_mfa_create)

    mfa_list = actions.add_parser("mfa-list", help="a user's TOTP device serials")
    mfa_list.add_argument("uid")
    mfa_list.set_defaults(func=cmd_mfa_list)

    mfa_rm = actions.add_parser("mfa-remove", help="remove a user's TOTP device")
    mfa_rm.add_argument("uid")
    mfa_rm.add_argument("serial")
    mfa_rm.set_defaults(func=cmd_mfa_remove)

    for p in (create, lst, show, delete, key_add, key_rm, mfa_add, mfa_list, mfa_rm):
        backend_options(p)


def _key_doc(key: AccessKey) -> dict[str, str]:
    return {"user": key.uid, "access_key": key.access_key, "secret_key": key.secret}


def _print(doc) -> None:
    json.dump(doc, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _admin(args, work) -> int:
    try:
        result = with_engine(settings_from(args), work)
    except EngineError as exc:
        print(f"atonix-cli: {exc}", file=sys.stderr)
        return 1
    if result is not None:
        _print(result)
    return 0


def cmd_create(args) -> int:
    async def work(engine: Engine):
        user, key = await engine.identities(CLI).create_user(
            args.uid, args.display_name, args.email, args.access_key, args.secret
        )
        return {"user_id": user.uid, "display_name": user.display_name, "email": user.email,
                "keys": [_key_doc(key)]}

    return _admin(args, work)


def cmd_list(args) -> int:
    async def work(engine: Engine):
        return [u.uid for u in await engine.identities(CLI).list_users()]

    return _admin(args, work)


def cmd_show(args) -> int:
    async def work(engine: Engine):
        user = await engine.identities(CLI).get_user(args.uid)
        keys = await engine.identities(CLI).keys_of(args.uid)
        return {"user_id": user.uid, "display_name": user.display_name, "email": user.email,
                "keys": [_key_doc(k) for k in keys]}

    return _admin(args, work)


def cmd_delete(args) -> int:
    async def work(engine: Engine):
        await engine.identities(CLI).delete_user(args.uid)

    return _admin(args, work)


def cmd_key_add(args) -> int:
    async def work(engine: Engine):
        key = await engine.identities(CLI).add_key(args.uid, args.access_key, args.secret)
        return _key_doc(key)

    return _admin(args, work)


def cmd_key_remove(args) -> int:
    async def work(engine: Engine):
        await engine.identities(CLI).remove_key(args.uid, args.access_key)

    return _admin(args, work)


def cmd_mfa_create(args) -> int:
    async def work(engine: Engine):
        await engine.identities(CLI).get_user(args.uid)  # NoSuchUser first
        seed = await engine.mfa_devices(CLI).create(args.uid, args.serial, args.seed)
        uri = f"otpauth://totp/atonix:{quote(args.uid)}?secret={seed}&issuer=atonix"
        return {"user": args.uid, "serial": args.serial, "seed": seed, "otpauth": uri}

    return _admin(args, work)


def cmd_mfa_list(args) -> int:
    async def work(engine: Engine):
        await engine.identities(CLI).get_user(args.uid)
        return await engine.mfa_devices(CLI).serials(args.uid)

    return _admin(args, work)


def cmd_mfa_remove(args) -> int:
    async def work(engine: Engine):
        await engine.mfa_devices(CLI).remove(args.uid, args.serial)

    return _admin(args, work)


def bootstrap_admin(settings: Settings) -> AccessKey | None:
    """Prepare the pools and create the admin user if this is the first start."""
    return with_engine(settings, lambda engine: engine.identities(CLI).ensure_admin())


def cmd_admin_credentials(args) -> int:
    async def work(engine: Engine):
        await engine.identities(CLI).ensure_admin()
        keys = await engine.identities(CLI).keys_of(ADMIN_UID)
        return _key_doc(keys[0]) if keys else None

    return _admin(args, work)
