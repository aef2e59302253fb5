//! CSV downloads: a file streamed while it is read from the database, a part at a time, so
//! that neither a large export nor many at once hold more than a part per download in memory.

use std::io;

use futures::{StreamExt, stream};
use poem::{
    Body, IntoResponse, Response,
    http::{
        StatusCode,
        header::{CONTENT_DISPOSITION, CONTENT_LENGTH},
    },
};
use poem_openapi::{
    ApiResponse,
    registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry},
    types::Type,
};
use sea_orm::{DatabaseConnection, EntityTrait};
use ultra_domain::csv_export::{CsvReader, CsvTable};
use ultra_entity::export_chunks;

use super::error::ApiResult;

const CSV: &str = "text/csv; charset=utf-8";

/// A CSV file, sent with `Content-Disposition: attachment` so that browsers save it.
pub struct CsvFile {
    filename: String,
    /// Known for a file already built, so that clients can show progress and tell a cut
    /// transfer from a whole one.
    length: Option<u64>,
    body: Body,
}

impl CsvFile {
    /// The file of `T`'s rows matching `filter`, encoded while it is sent. The first part is
    /// read before answering, so that a database that is down at the start is an error
    /// response rather than a 200 with a broken body.
    pub async fn stream<T: CsvTable>(
        db: &DatabaseConnection,
        filter: &T::Filter,
        filename: String,
    ) -> ApiResult<Self> {
        let mut reader = CsvReader::<T>::new(db.clone(), filter);
        let mut head = Vec::new();
        reader.next_part(&mut head).await?;
        let rest = stream::try_unfold(reader, |mut reader| async move {
            let mut part = Vec::new();
            match reader.next_part(&mut part).await {
                Ok(Some(_)) => Ok(Some((part, reader))),
                Ok(None) => Ok(None),
                Err(err) => Err(aborted("reading rows", &err)),
            }
        });
        let parts = stream::once(async move { Ok::<_, io::Error>(head) }).chain(rest);
        Ok(Self { filename, length: None, body: Body::from_bytes_stream(parts) })
    }

    /// A file a worker built: its chunks in order, one in memory at a time. `length` is what
    /// the worker recorded; a file found shorter (deleted while it was sent) ends the transfer
    /// with an error instead of a complete-looking truncated file.
    pub fn stored(db: DatabaseConnection, export_id: String, filename: String, length: u64) -> Self {
        let chunks = stream::try_unfold((0, 0u64), move |(seq, sent)| {
            let (db, export_id) = (db.clone(), export_id.clone());
            async move {
                let chunk = export_chunks::Entity::find_by_id((export_id, seq))
                    .one(&db)
                    .await
                    .map_err(|err| aborted("reading the stored file", &err))?;
                match chunk {
                    Some(chunk) => {
                        let sent = sent + chunk.data.len() as u64;
                        Ok(Some((chunk.data, (seq + 1, sent))))
                    }
                    None if sent == length => Ok(None),
                    None => Err(aborted("reading the stored file", &"a chunk is missing")),
                }
            }
        });
        Self { filename, length: Some(length), body: Body::from_bytes_stream(chunks) }
    }
}

/// The status line has long been sent when a later part fails, so a failure can only abort the
/// body: the client sees a cut transfer rather than a file that silently lacks rows.
fn aborted(stage: &str, err: &dyn std::fmt::Display) -> io::Error {
    tracing::error!(error = %err, "CSV download failed while {stage}");
    io::Error::other(format!("CSV download failed while {stage}"))
}

impl IntoResponse for CsvFile {
    fn into_response(self) -> Response {
        let mut response = Response::builder()
            .status(StatusCode::OK)
            .content_type(CSV)
            .header(CONTENT_DISPOSITION, format!("attachment; filename=\"{}\"", self.filename));
        if let Some(length) = self.length {
            response = response.header(CONTENT_LENGTH, length);
        }
        response.body(self.body)
    }
}

impl ApiResponse for CsvFile {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "The CSV file, streamed; a header row even when no row matches",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: CSV,
                    schema: MetaSchemaRef::Inline(Box::new(MetaSchema::new("string"))),
                }],
                headers: vec![MetaHeader {
                    name: "Content-Disposition".to_owned(),
                    description: Some(
                        "`attachment; filename=\"<kind>-<merchantId>-<YYYY-MM-DD>.csv\"`: what the file \
                         holds, whose it is and the day it was asked for"
                            .to_owned(),
                    ),
                    required: true,
                    deprecated: false,
                    schema: String::schema_ref(),
                }],
            }],
        }
    }

    fn register(_registry: &mut Registry) {}
}
