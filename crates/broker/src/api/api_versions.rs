//! ApiVersions (18): the served table; KIP-511 fallback for versions newer than served.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use sluice_protocol::{served_range, SERVED_APIS};

use crate::error_code;

pub fn handle(_request: &ApiVersionsRequest, version: i16) -> ApiVersionsResponse {
    let api_keys = SERVED_APIS
        .iter()
        .map(|(key, lo, hi)| {
            ApiVersion::default().with_api_key(*key as i16).with_min_version(*lo).with_max_version(*hi)
        })
        .collect();
    let (_, hi) = served_range(kafka_protocol::messages::ApiKey::ApiVersions).expect("served");
    let error_code = if version > hi { error_code::UNSUPPORTED_VERSION } else { error_code::NONE };
    ApiVersionsResponse::default().with_error_code(error_code).with_api_keys(api_keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x1_advertises_exactly_the_served_table() {
        let r = handle(&Default::default(), 3);
        assert_eq!(r.error_code, 0);
        assert_eq!(r.api_keys.len(), SERVED_APIS.len());
        let produce = r.api_keys.iter().find(|k| k.api_key == 0).unwrap();
        assert_eq!((produce.min_version, produce.max_version), (3, 13), "Kafka 4.3: topic ids from v13");
        assert_eq!(handle(&Default::default(), 9).error_code, 35);
    }
}
