"""DynamoDB Streams for the local stack and the tests: read a table's new stream records and shape
them as the event Lambda's DynamoDB event source mapping would deliver.

    reader = StreamReader("orcapulse-social-leads-tiktok-dev")   # start at the stream's oldest record
    records = reader.poll()                                      # only records not returned before
    publisher.lambda_handler(lambda_event(records), context)

The reader keeps one shard iterator per shard, so each record is returned once; to replay a batch
(as Lambda does after a batch item failure), pass the same records to ``lambda_event`` again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import boto3


class StreamReader:
    """New records of one table's stream, across all its shards."""

    def __init__(
        self,
        table_name: str,
        *,
        start: str = "TRIM_HORIZON",
        region_name: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        if start not in ("TRIM_HORIZON", "LATEST"):
            raise ValueError("start must be TRIM_HORIZON or LATEST")
        kwargs = {"region_name": region_name, "endpoint_url": endpoint_url}
        table = boto3.client("dynamodb", **kwargs).describe_table(TableName=table_name)["Table"]
        if "LatestStreamArn" not in table:
            raise ValueError(f"table {table_name} has no stream")
        self.stream_arn: str = table["LatestStreamArn"]
        self.region: str = table["TableArn"].split(":")[3]
        self._streams = boto3.client("dynamodbstreams", **kwargs)
        self._start = start
        self._iterators: dict[str, str | None] = {}  # shard id → next iterator (None: shard closed)

    def poll(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Every record written since the last poll (at most ``limit`` per shard), oldest first,
        each carrying its ``eventSourceARN``."""
        records: list[dict[str, Any]] = []
        for shard_id in self._shard_ids():
            iterator = self._iterators.get(shard_id)
            if shard_id not in self._iterators:
                iterator = self._streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType=self._start
                )["ShardIterator"]
            if iterator is None:
                continue
            page = self._streams.get_records(ShardIterator=iterator, Limit=limit)
            records.extend({**r, "eventSourceARN": self.stream_arn} for r in page["Records"])
            self._iterators[shard_id] = page.get("NextShardIterator")
        return records

    def _shard_ids(self) -> list[str]:
        shards: list[str] = []
        kwargs: dict[str, Any] = {"StreamArn": self.stream_arn}
        while True:
            description = self._streams.describe_stream(**kwargs)["StreamDescription"]
            shards.extend(s["ShardId"] for s in description.get("Shards", []))
            last = description.get("LastEvaluatedShardId")
            if not last:
                return shards
            kwargs["ExclusiveStartShardId"] = last


def lambda_event(records: list[dict[str, Any]], stream_arn: str | None = None) -> dict[str, Any]:
    """The Lambda event for ``records``: ``{"Records": [...]}`` with ``eventSourceARN`` added and
    ``ApproximateCreationDateTime`` as epoch seconds, as the event source mapping sends them."""
    out = []
    for record in records:
        dynamodb = dict(record.get("dynamodb", {}))
        created = dynamodb.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            dynamodb["ApproximateCreationDateTime"] = int(created.timestamp())
        out.append(
            {
                "eventID": record.get("eventID"),
                "eventName": record.get("eventName"),
                "eventVersion": record.get("eventVersion", "1.1"),
                "eventSource": "aws:dynamodb",
                "awsRegion": record.get("awsRegion"),
                "eventSourceARN": stream_arn or record.get("eventSourceARN"),
                "dynamodb": dynamodb,
            }
        )
    return {"Records": out}
