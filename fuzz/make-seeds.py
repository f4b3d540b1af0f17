#!/usr/bin/env python3
"""Writes the small seed corpora under fuzz/corpus/ from real inputs: manifests as the primary
signs them (the proto unit tests' key, [1; 32]), a real payload and snapshot file, rows like the
case system's export, lookups a terminal makes and names from the unit tests. Run from fuzz/."""

import hashlib
import os
import struct

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

MANIFEST_DOMAIN = b"cpreg-snapshot-manifest-v1\0"
FILE_MAGIC = b"cpreg-snapshot-file-v1\n"


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field_varint(number, value):
    if value == 0:
        return b""
    return varint(number << 3) + varint(value & 0xFFFFFFFFFFFFFFFF)


def field_bytes(number, value):
    if not value:
        return b""
    return varint(number << 3 | 2) + varint(len(value)) + value


def change(key, value):
    body = field_bytes(1, key.encode()) + field_bytes(2, value)
    return varint(len(body)) + body


key = Ed25519PrivateKey.from_private_bytes(bytes([1] * 32))
public = key.public_key().public_bytes_raw()
key_id = hashlib.sha256(public).hexdigest()[:16].encode()

payload = change("child/C-1", b"\x0a\x03C-1\x12\x04Zoe\x1a\x05Smith") + change("authority", b"lambeth")


def manifest(version, kind, base, payload_bytes):
    return b"".join(
        [
            field_bytes(1, b"lambeth"),
            field_varint(2, version),
            field_varint(3, 1_000 + version),
            field_varint(4, 10_000),
            field_bytes(5, key_id),
            field_varint(6, kind),
            field_varint(7, base),
            field_bytes(8, hashlib.sha256(payload_bytes).digest() if kind != 3 else b""),
            field_varint(9, len(payload_bytes) if kind != 3 else 0),
            field_varint(10, 1),
            field_bytes(11, bytes(64)),
        ]
    )


def signed(manifest_bytes):
    signature = key.sign(MANIFEST_DOMAIN + manifest_bytes)
    return field_bytes(1, key_id) + field_bytes(2, manifest_bytes) + field_bytes(3, signature)


def write(target, name, data):
    folder = os.path.join("corpus", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


full = manifest(2, 1, 0, payload)
delta = manifest(3, 2, 1, payload)
fresh = manifest(1, 3, 0, b"")
# The first byte: held version 1; high bit clear = the target signs the rest, set = an envelope.
write("snapshot_manifest", "full", b"\x01" + full)
write("snapshot_manifest", "delta", b"\x01" + delta)
write("snapshot_manifest", "freshness", b"\x01" + fresh)
write("snapshot_manifest", "signed-full", b"\x81" + signed(full))

write("snapshot_payload", "two-changes", payload)
write("snapshot_payload", "removal", change("child/C-1", b""))

frame_manifest = field_bytes(1, signed(full))
frame_chunk = field_bytes(2, payload)
file_body = varint(len(frame_manifest)) + frame_manifest + varint(len(frame_chunk)) + frame_chunk
write("snapshot_file", "whole", b"\x01" + FILE_MAGIC + file_body)
write("snapshot_file", "frames-only", b"\x00" + file_body)
write("snapshot_file", "truncated", b"\x00" + file_body[:-7])

columns = (
    "record_id,given_names,surname,other_names,date_of_birth,gender,nhs_number,address,postcode,"
    "category,plan_start_date,lead_social_worker,lead_social_worker_phone,next_review_date,"
    "lead_social_worker_email,expected_delivery_date,mother_given_names,mother_surname,"
    "mother_date_of_birth,mother_nhs_number"
)
row = (
    'C-1,Zoë,O\'Connor-Smith,"Zoe Smith;Zoey",2019-03-14,female,943 476 5919,"1 High St, Croydon",'
    "CR0 1AA,neglect;emotional,2026-01-05,Jo Bloggs,020 7946 0000,2026-12-01,jo@example.org,,,,,"
)
unborn = "U-1,,,,,,,,,,2026-09-01,Jo Bloggs,020 7946 0000,2026-12-01,,2027-01-20,Amy,Jones,1999-05-02,"
write("csv_import", "full-row", b"\x00" + (row + "\n" + unborn + "\n").encode())
write("csv_import", "with-header", b"\x01" + ("record_id,surname,address\nA1,Smith,\"1 High St\nCroydon\"\nA2,Jo\"nes\n").encode())

write("lookup_criteria", "child", "Zoe\nSmith\n2019-03-14\n".encode())
write("lookup_criteria", "nhs", "\nSmith\n\n943 476 5919\n".encode())
write("lookup_criteria", "unborn", "\n\n\n\nAmy\nJones\n\n2027-01-20\n".encode())
write("lookup_criteria", "wildcard", "Zo*\nSmi*\n2019-03-14\n".encode())

for i, name in enumerate(["Zoë O'Connor-Smith", "Łukasz Wójcik", "Nguyễn", "  mary   ANNE. ", "Ștefan D’Souza"]):
    write("name_normalise", f"name-{i}", name.encode())
