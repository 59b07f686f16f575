"""A buyer's own bookings, newest first (the /account page and GET /api/users/me/reservations)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

MAX_LISTED = 200

_LIST_SQL = """
    SELECT r.id, r.reference, r.event_id, e.name AS event_name, e.venue, e.starts_at,
           CASE WHEN r.status = 'held' AND r.expires_at <= now() THEN 'expired'
                ELSE r.status END AS status,
           r.amount_cents, r.expires_at, r.created_at,
           (SELECT json_agg(json_build_object('id', s.id, 'section', s.section,
                                              'row', s.row_label, 'number', s.number)
                            ORDER BY s.id)
              FROM reservation_seats rs JOIN seats s ON s.id = rs.seat_id
             WHERE rs.reservation_id = r.id)::text AS seats,
           (SELECT p.status FROM payments p WHERE p.reservation_id = r.id
             ORDER BY p.id DESC LIMIT 1) AS payment_status
      FROM reservations r JOIN events e ON e.id = r.event_id
     WHERE r.user_id = $1
     ORDER BY r.id DESC
     LIMIT $2
"""


async def list_bookings(pool: asyncpg.Pool, user_id: int) -> list[dict[str, Any]]:
    rows = await pool.fetch(_LIST_SQL, user_id, MAX_LISTED)
    return [
        {
            "id": r["id"],
            "reference": r["reference"],
            "status": r["status"],
            "payment_status": r["payment_status"],
            "amount": r["amount_cents"],
            "expires_at": r["expires_at"].isoformat(),
            "created_at": r["created_at"].isoformat(),
            "event": {
                "id": r["event_id"],
                "name": r["event_name"],
                "venue": r["venue"],
                "starts_at": r["starts_at"].isoformat(),
            },
            "seats": json.loads(r["seats"] or "[]"),
            "links": {
                "self": f"/api/reservations/{r['id']}",
                "page": f"/reservations/{r['id']}",
                "event": f"/events/{r['event_id']}/seats",
            },
        }
        for r in rows
    ]
