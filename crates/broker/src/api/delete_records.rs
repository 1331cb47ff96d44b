//! DeleteRecords (21): moves each partition's log start offset up to the given offset (-1 =
//! the high watermark) and answers the new low watermark, as Kafka's
//! `ReplicaManager.deleteRecords` and `Partition.deleteRecordsOnLeader` do: an offset past
//! the high watermark or negative (other than -1) is OFFSET_OUT_OF_RANGE, the internal
//! `__consumer_offsets` is INVALID_TOPIC_EXCEPTION, an unknown topic or partition
//! UNKNOWN_TOPIC_OR_PARTITION; on error the low watermark is -1. Whole segments below the new
//! start are deleted at once and the start is persisted before the answer (the log's
//! `log-start-offset` file). One node: nothing to wait for, so `timeout_ms` is not used.

use std::sync::Arc;

use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use crate::broker::Broker;
use crate::error_code;

/// `DeleteRecordsRequest.HIGH_WATERMARK`: delete everything below the high watermark.
pub const HIGH_WATERMARK: i64 = -1;
/// `DeleteRecordsResponse.INVALID_LOW_WATERMARK`.
const INVALID_LOW_WATERMARK: i64 = -1;

fn delete_one(broker: &Broker, topic: &str, index: i32, offset: i64) -> Result<i64, i16> {
    let topic = broker.topic(topic).ok_or(error_code::UNKNOWN_TOPIC_OR_PARTITION)?;
    let partition = topic.partition(index).ok_or(error_code::UNKNOWN_TOPIC_OR_PARTITION)?;
    if topic.internal {
        return Err(error_code::INVALID_TOPIC_EXCEPTION);
    }
    let target = match offset {
        HIGH_WATERMARK => partition.with_log(|log| log.high_watermark()),
        o => o,
    };
    partition.delete_records_before(target).map_err(|e| error_code::from_log(&e))
}

pub fn handle(broker: &Arc<Broker>, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let result = DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
                    match delete_one(broker, t.name.as_str(), p.partition_index, p.offset) {
                        Ok(low_watermark) => result.with_low_watermark(low_watermark),
                        Err(code) => result.with_low_watermark(INVALID_LOW_WATERMARK).with_error_code(code),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}
