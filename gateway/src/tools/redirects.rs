//! How `http_fetch` follows redirects: by hand, one hop at a time, so that every hop passes
//! the same checks as the first URL: the SSRF guard ([`super::ssrf`]) and the call's policy
//! ([`super::RedirectCheck`]), which is asked again with the hop's URL. An open redirect on
//! an allowed domain therefore cannot lead to a blocked one.

use super::ssrf::{self, MAX_REDIRECTS};
use super::{RedirectCheck, ToolError};
use std::time::Duration;
use tokio::time::Instant;
use url::Url;

/// Sends `method` to `url` (already checked by the caller) and follows up to
/// [`MAX_REDIRECTS`] redirects, each checked; all hops together within `timeout`. Returns
/// the final answer.
pub async fn send_following(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &Url,
    timeout: Duration,
    allow_private: bool,
    redirects: &dyn RedirectCheck,
) -> Result<reqwest::Response, ToolError> {
    let deadline = Instant::now() + timeout;
    let mut current = url.clone();
    for hop in 0..=MAX_REDIRECTS {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(ToolError::Timeout);
        }
        let response = client
            .request(method.clone(), current.clone())
            .timeout(remaining)
            .send()
            .await
            .map_err(upstream_error)?;
        let Some(next) = redirect_target(&response, &current) else {
            return Ok(response);
        };
        if hop == MAX_REDIRECTS {
            break;
        }
        let next = next?;
        ssrf::check_url(&next, allow_private).map_err(|r| ToolError::DestinationRefused(r.0))?;
        redirects.check(&next).await?;
        current = next;
    }
    Err(ToolError::DestinationRefused(format!(
        "more than {MAX_REDIRECTS} redirects"
    )))
}

/// Where a redirect answer leads (`None` for any other answer).
fn redirect_target(response: &reqwest::Response, from: &Url) -> Option<Result<Url, ToolError>> {
    if !response.status().is_redirection() {
        return None;
    }
    let location = response.headers().get(reqwest::header::LOCATION)?;
    Some(
        location
            .to_str()
            .ok()
            .and_then(|l| from.join(l).ok())
            .ok_or_else(|| ToolError::BadAnswer("a redirect to an unreadable location".into())),
    )
}

/// Maps a client error, telling a guard refusal apart from a network failure.
pub fn upstream_error(e: reqwest::Error) -> ToolError {
    if let Some(refused) = ssrf::refusal_in(&e) {
        return ToolError::DestinationRefused(refused.0);
    }
    super::upstream::client_error(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::AnyRedirect;
    use std::future::Future;
    use std::pin::Pin;

    /// A server on 127.0.0.1: `/to?l=LOCATION` redirects there, `/loop` to itself, `/ok`
    /// answers.
    async fn local_server() -> String {
        let app = axum::Router::new()
            .route(
                "/to",
                axum::routing::get(
                    |axum::extract::Query(q): axum::extract::Query<
                        std::collections::HashMap<String, String>,
                    >| async move {
                        (
                            axum::http::StatusCode::FOUND,
                            [(axum::http::header::LOCATION, q["l"].clone())],
                        )
                    },
                ),
            )
            .route(
                "/loop",
                axum::routing::get(|| async {
                    (
                        axum::http::StatusCode::FOUND,
                        [(axum::http::header::LOCATION, "/loop")],
                    )
                }),
            )
            .route("/ok", axum::routing::get(|| async { "ok" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        base
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap()
    }

    async fn fetch(
        url: &str,
        allow_private: bool,
        check: &dyn RedirectCheck,
    ) -> Result<reqwest::Response, ToolError> {
        let url = Url::parse(url).unwrap();
        send_following(
            &client(),
            reqwest::Method::GET,
            &url,
            Duration::from_secs(10),
            allow_private,
            check,
        )
        .await
    }

    #[tokio::test]
    async fn a_redirect_to_a_private_address_is_refused() {
        let base = local_server().await;
        for location in [
            "http://10.0.0.1/",
            "http://169.254.169.254/",
            "http://[::1]:9/",
        ] {
            let error = fetch(&format!("{base}/to?l={location}"), false, &AnyRedirect)
                .await
                .unwrap_err();
            assert!(
                matches!(error, ToolError::DestinationRefused(_)),
                "{location}: {error:?}"
            );
        }
    }

    /// Refuses any hop whose path is `/ok`.
    struct RefuseOk;

    impl RedirectCheck for RefuseOk {
        fn check<'a>(
            &'a self,
            url: &'a Url,
        ) -> Pin<Box<dyn Future<Output = Result<(), ToolError>> + Send + 'a>> {
            Box::pin(async move {
                if url.path() == "/ok" {
                    Err(ToolError::RedirectDenied {
                        url: url.to_string(),
                        code: "no".into(),
                        reason: "no".into(),
                    })
                } else {
                    Ok(())
                }
            })
        }
    }

    #[tokio::test]
    async fn every_hop_is_asked_and_a_refusal_stops_the_fetch() {
        let base = local_server().await;
        let ok = fetch(&format!("{base}/to?l=/ok"), true, &AnyRedirect)
            .await
            .unwrap();
        assert_eq!(ok.text().await.unwrap(), "ok");
        let two_hops = format!("{base}/to?l=/to%3Fl%3D/ok");
        let error = fetch(&two_hops, true, &RefuseOk).await.unwrap_err();
        assert!(
            matches!(error, ToolError::RedirectDenied { ref url, .. } if url.ends_with("/ok")),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn a_redirect_loop_ends_after_the_limit() {
        let base = local_server().await;
        let error = fetch(&format!("{base}/loop"), true, &AnyRedirect)
            .await
            .unwrap_err();
        assert!(
            matches!(error, ToolError::DestinationRefused(ref why) if why.contains("redirects")),
            "{error:?}"
        );
    }
}
