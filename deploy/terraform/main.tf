locals {
  create_user = var.identity_type == "user"
  create_role = var.identity_type == "role"

  cross_account_role_name = coalesce(var.cross_account_role_name, "${var.name}-cross-account")

  # The daemon identity created here, as a principal for the cross-account trust.
  own_principal_arns = compact([
    local.create_user ? one(aws_iam_user.daemon[*].arn) : "",
    local.create_role ? one(aws_iam_role.daemon[*].arn) : "",
  ])
  cross_account_principals = length(var.cross_account_trusted_principal_arns) > 0 ? var.cross_account_trusted_principal_arns : local.own_principal_arns

  irsa_issuer = var.irsa_oidc_provider_arn == null ? "" : element(split("oidc-provider/", var.irsa_oidc_provider_arn), 1)
}

# ---------------------------------------------------------------------------
# The minimal permissions: ecr:GetAuthorizationToken (cannot be scoped to a
# resource), optionally pinned to some regions.
# ---------------------------------------------------------------------------
data "aws_iam_policy_document" "ecr_token" {
  statement {
    sid       = "GetEcrAuthorizationToken"
    effect    = "Allow"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]

    dynamic "condition" {
      for_each = length(var.pinned_regions) > 0 ? [var.pinned_regions] : []
      content {
        test     = "StringEquals"
        variable = "aws:RequestedRegion"
        values   = condition.value
      }
    }
  }
}

resource "aws_iam_policy" "ecr_token" {
  name        = "${var.name}-ecr-token"
  path        = var.path
  description = "rancher-ecr-credentials: get Amazon ECR authorization tokens"
  policy      = data.aws_iam_policy_document.ecr_token.json
  tags        = var.tags
}

# ---------------------------------------------------------------------------
# Identity option 1: an IAM user (static keys, e.g. for Rancher 1.x hosts
# outside AWS).
# ---------------------------------------------------------------------------
resource "aws_iam_user" "daemon" {
  count = local.create_user ? 1 : 0

  name = var.name
  path = var.path
  tags = var.tags
}

resource "aws_iam_user_policy_attachment" "daemon_ecr_token" {
  count = local.create_user ? 1 : 0

  user       = aws_iam_user.daemon[0].name
  policy_arn = aws_iam_policy.ecr_token.arn
}

resource "aws_iam_access_key" "daemon" {
  count = local.create_user && var.create_access_key ? 1 : 0

  user = aws_iam_user.daemon[0].name
}

# ---------------------------------------------------------------------------
# Identity option 2: an IAM role (EC2 instance profile, IRSA, other principals).
# ---------------------------------------------------------------------------
data "aws_iam_policy_document" "daemon_trust" {
  dynamic "statement" {
    for_each = length(var.role_trusted_services) > 0 ? [1] : []
    content {
      sid     = "TrustedServices"
      effect  = "Allow"
      actions = ["sts:AssumeRole"]
      principals {
        type        = "Service"
        identifiers = var.role_trusted_services
      }
    }
  }

  dynamic "statement" {
    for_each = length(var.role_trusted_principal_arns) > 0 ? [1] : []
    content {
      sid     = "TrustedPrincipals"
      effect  = "Allow"
      actions = ["sts:AssumeRole"]
      principals {
        type        = "AWS"
        identifiers = var.role_trusted_principal_arns
      }
    }
  }

  dynamic "statement" {
    for_each = var.irsa_oidc_provider_arn == null ? [] : [var.irsa_oidc_provider_arn]
    content {
      sid     = "EksServiceAccount"
      effect  = "Allow"
      actions = ["sts:AssumeRoleWithWebIdentity"]
      principals {
        type        = "Federated"
        identifiers = [statement.value]
      }
      condition {
        test     = "StringEquals"
        variable = "${local.irsa_issuer}:sub"
        values   = ["system:serviceaccount:${var.irsa_namespace}:${var.irsa_service_account}"]
      }
      condition {
        test     = "StringEquals"
        variable = "${local.irsa_issuer}:aud"
        values   = ["sts.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role" "daemon" {
  count = local.create_role ? 1 : 0

  name                 = var.name
  path                 = var.path
  assume_role_policy   = data.aws_iam_policy_document.daemon_trust.json
  max_session_duration = var.max_session_duration
  tags                 = var.tags

  lifecycle {
    precondition {
      condition     = length(var.role_trusted_services) + length(var.role_trusted_principal_arns) > 0 || var.irsa_oidc_provider_arn != null
      error_message = "identity_type = \"role\" needs someone to trust: role_trusted_services, role_trusted_principal_arns or irsa_oidc_provider_arn."
    }
  }
}

resource "aws_iam_role_policy_attachment" "daemon_ecr_token" {
  count = local.create_role ? 1 : 0

  role       = aws_iam_role.daemon[0].name
  policy_arn = aws_iam_policy.ecr_token.arn
}

resource "aws_iam_instance_profile" "daemon" {
  count = local.create_role && var.create_instance_profile ? 1 : 0

  name = var.name
  path = var.path
  role = aws_iam_role.daemon[0].name
  tags = var.tags
}

# ---------------------------------------------------------------------------
# Optional cross-account role in the registry account, assumed with an
# ExternalId (AWS_ROLE_ARN + AWS_ROLE_EXTERNAL_ID).
# ---------------------------------------------------------------------------
data "aws_iam_policy_document" "cross_account_trust" {
  count = var.create_cross_account_role ? 1 : 0

  statement {
    sid     = "AllowRancherEcrCredentialsToAssume"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = local.cross_account_principals
    }

    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [var.external_id == null ? "" : var.external_id]
    }
  }
}

resource "aws_iam_role" "cross_account" {
  count    = var.create_cross_account_role ? 1 : 0
  provider = aws.registry

  name                 = local.cross_account_role_name
  path                 = var.path
  assume_role_policy   = data.aws_iam_policy_document.cross_account_trust[0].json
  max_session_duration = var.max_session_duration
  tags                 = var.tags

  lifecycle {
    precondition {
      condition     = var.external_id != null && try(length(var.external_id) >= 2, false)
      error_message = "create_cross_account_role needs external_id (2 characters or more; use a long random value)."
    }
    precondition {
      condition     = length(local.cross_account_principals) > 0
      error_message = "create_cross_account_role needs a principal to trust: cross_account_trusted_principal_arns or an identity created here."
    }
  }
}

resource "aws_iam_role_policy" "cross_account_ecr_token" {
  count    = var.create_cross_account_role ? 1 : 0
  provider = aws.registry

  name   = "${var.name}-ecr-token"
  role   = aws_iam_role.cross_account[0].id
  policy = data.aws_iam_policy_document.ecr_token.json
}

# The daemon's own identity may assume the cross-account role.
data "aws_iam_policy_document" "assume_cross_account" {
  count = var.create_cross_account_role ? 1 : 0

  statement {
    sid       = "AssumeTheEcrTokenRole"
    effect    = "Allow"
    actions   = ["sts:AssumeRole"]
    resources = [aws_iam_role.cross_account[0].arn]
  }
}

resource "aws_iam_policy" "assume_cross_account" {
  count = var.create_cross_account_role ? 1 : 0

  name        = "${var.name}-assume-cross-account"
  path        = var.path
  description = "rancher-ecr-credentials: assume the ECR token role in the registry account"
  policy      = data.aws_iam_policy_document.assume_cross_account[0].json
  tags        = var.tags
}

resource "aws_iam_user_policy_attachment" "daemon_assume_cross_account" {
  count = var.create_cross_account_role && local.create_user ? 1 : 0

  user       = aws_iam_user.daemon[0].name
  policy_arn = aws_iam_policy.assume_cross_account[0].arn
}

resource "aws_iam_role_policy_attachment" "daemon_assume_cross_account" {
  count = var.create_cross_account_role && local.create_role ? 1 : 0

  role       = aws_iam_role.daemon[0].name
  policy_arn = aws_iam_policy.assume_cross_account[0].arn
}
