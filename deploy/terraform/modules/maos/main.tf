# Deploys MAOS with its Helm chart: an optional namespace, a Secret with the database URL and other
# secret environment, and the helm_release wired to them. Upgrades run the chart's migration Job.

locals {
  chart = coalesce(var.chart_path, "${path.module}/../../../helm/maos")
  # The chart's resource names: the release name, or <release>-maos when it does not contain "maos".
  fullname      = strcontains(var.release_name, "maos") ? var.release_name : "${var.release_name}-maos"
  create_secret = var.existing_secret_name == null
  secret_name   = local.create_secret ? "${var.release_name}-env" : var.existing_secret_name
  secret_data = merge(
    var.secret_env,
    var.database_url == null ? {} : { MAOS_STORE__URL = var.database_url },
  )
  # Pods read the Secret as environment only when they start: a checksum of what the module puts in
  # it rolls them when it changes (a rotated database password), as the chart does for its own Secret.
  pod_annotations = local.create_secret ? {
    "checksum/secret" = nonsensitive(sha256(jsonencode(local.secret_data)))
  } : {}
  # Always the same object type (a conditional between {} and this object does not type-check); with
  # an empty issuer the chart renders no oidc section, and empty values keep the chart's defaults.
  oidc = {
    issuer      = var.oidc_issuer
    audience    = var.oidc_audience
    rolesClaim  = var.oidc_roles_claim
    roleMapping = var.oidc_role_mapping
    console = {
      clientId            = var.oidc_console_client_id
      tokenEndpointOrigin = var.oidc_console_token_endpoint_origin
    }
  }
  values = {
    image = {
      repository = var.image_repository
      tag        = var.image_tag
    }
    database = {
      mode = var.database_mode
    }
    existingSecret = local.secret_name
    podAnnotations = local.pod_annotations
    replicaCount   = var.replicas
    autoscaling = {
      enabled                        = var.autoscaling.enabled
      minReplicas                    = var.autoscaling.min
      maxReplicas                    = var.autoscaling.max
      targetCPUUtilizationPercentage = var.autoscaling.cpu_percent
    }
    auth = {
      mode = var.auth_mode
      oidc = local.oidc
    }
    config = var.config
    auditCheckpoints = {
      persistence = {
        enabled       = var.audit_checkpoints_persistence.enabled
        existingClaim = var.audit_checkpoints_persistence.existing_claim
        size          = var.audit_checkpoints_persistence.size
        storageClass  = var.audit_checkpoints_persistence.storage_class
        accessModes   = var.audit_checkpoints_persistence.access_modes
      }
    }
    tls = {
      secretName = var.tls_secret == null ? "" : var.tls_secret
    }
    ingress = {
      enabled   = var.ingress_host != null
      className = var.ingress_class
      hosts = var.ingress_host == null ? [] : [{
        host  = var.ingress_host
        paths = [{ path = "/", pathType = "Prefix" }]
      }]
      tls = var.ingress_tls_secret == null || var.ingress_host == null ? [] : [{
        secretName = var.ingress_tls_secret
        hosts      = [var.ingress_host]
      }]
    }
  }
}

# PostgreSQL mode: every replica must sign audit checkpoints with the same key, or each pod
# generates its own (no persistent data directory) and the checkpoints verify with no single key.
# The chart only warns in its install notes, which Terraform does not show: warn at plan and apply.
check "audit_signing_key" {
  assert {
    # The key in the Secret, or a file every pod mounts (extra_values) named by audit.signingKey_FILE
    # (config.audit.signingKey itself is refused: var.config holds no secrets).
    condition = (
      var.database_mode != "postgres" || var.existing_secret_name != null ||
      nonsensitive(length(setintersection(keys(var.secret_env), ["MAOS_AUDIT__SIGNING_KEY", "MAOS_AUDIT__SIGNING_KEY_FILE"])) > 0) ||
      try(var.config.audit.signingKey_FILE, null) != null
    )
    error_message = "postgres mode without MAOS_AUDIT__SIGNING_KEY in secret_env: every pod signs audit checkpoints with its own generated key. Set one shared key (an Ed25519 PKCS#8 PEM)."
  }
}

resource "kubernetes_namespace_v1" "maos" {
  count = var.create_namespace ? 1 : 0
  metadata {
    name = var.namespace
    labels = {
      "app.kubernetes.io/part-of" = "maos"
    }
  }
}

resource "kubernetes_secret_v1" "env" {
  count = local.create_secret ? 1 : 0
  metadata {
    name      = local.secret_name
    namespace = var.namespace
    labels = {
      "app.kubernetes.io/part-of" = "maos"
    }
  }
  data       = local.secret_data
  depends_on = [kubernetes_namespace_v1.maos]

  lifecycle {
    precondition {
      condition     = var.database_mode != "postgres" || var.database_url != null
      error_message = "postgres mode needs database_url, or existing_secret_name holding MAOS_STORE__URL."
    }
  }
}

resource "helm_release" "maos" {
  name      = var.release_name
  namespace = var.namespace
  chart     = local.chart
  version   = var.chart_version
  # Wait for the rollout (and the pre-upgrade migration Job) so a failed upgrade fails the apply.
  wait            = true
  atomic          = true
  cleanup_on_fail = true
  timeout         = 900

  values = concat([yamlencode(local.values)], var.extra_values)

  depends_on = [kubernetes_namespace_v1.maos, kubernetes_secret_v1.env]

  lifecycle {
    precondition {
      condition     = var.auth_mode == "apikey" || (var.oidc_issuer != "" && var.oidc_audience != "")
      error_message = "oidc_issuer and oidc_audience are required when auth_mode is oidc or both."
    }
  }
}
