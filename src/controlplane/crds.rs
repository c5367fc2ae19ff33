//! Installing CustomResourceDefinitions and waiting until the API server serves them.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};

use super::Error;

/// The field manager of everything the harness applies.
const FIELD_MANAGER: &str = "partnercloud";
/// How long one CRD may take to become Established.
const ESTABLISHED_TIMEOUT: Duration = Duration::from_secs(30);

/// Applies `crds` with server-side apply, then waits until each is Established.
///
/// All are applied before any is awaited, so the API server establishes them concurrently.
pub async fn install_crds(
    client: &kube::Client,
    crds: &[CustomResourceDefinition],
) -> Result<(), Error> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut names = Vec::with_capacity(crds.len());
    for crd in crds {
        let name = crd.metadata.name.as_deref().ok_or(Error::UnnamedCrd)?;
        api.patch(name, &params, &Patch::Apply(crd)).await?;
        names.push(name);
    }
    for name in names {
        wait_established(&api, name).await?;
    }
    Ok(())
}

async fn wait_established(api: &Api<CustomResourceDefinition>, name: &str) -> Result<(), Error> {
    let established = await_condition(api.clone(), name, conditions::is_crd_established());
    match tokio::time::timeout(ESTABLISHED_TIMEOUT, established).await {
        Ok(result) => result.map(drop).map_err(Error::from),
        Err(_) => Err(Error::CrdNotEstablished {
            name: name.to_owned(),
            timeout: ESTABLISHED_TIMEOUT,
        }),
    }
}
