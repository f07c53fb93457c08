# How clients reach the api function: a Lambda function URL (the default)
# or an API Gateway HTTP API with an optional custom domain. Either way the
# registry authenticates every request itself (basic auth, registry tokens),
# so the endpoint is public at the AWS level, as a registry must be.

locals {
  function_url = var.api_exposure == "function_url"
  http_api     = var.api_exposure == "http_api"
}

resource "aws_lambda_function_url" "api" {
  #checkov:skip=CKV_AWS_258:A registry endpoint must take unsigned requests from docker and other clients; berth authenticates each request itself.
  count              = local.function_url ? 1 : 0
  function_name      = aws_lambda_function.function["api"].function_name
  authorization_type = "NONE"
  invoke_mode        = "BUFFERED"
}

resource "aws_lambda_permission" "function_url" {
  #checkov:skip=CKV_AWS_364:The function URL is the public registry endpoint; the source is any client by design.
  #checkov:skip=CKV_AWS_301:The function URL is the public registry endpoint; berth authenticates each request itself.
  count                  = local.function_url ? 1 : 0
  statement_id           = "FunctionUrlPublic"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = aws_lambda_function.function["api"].function_name
  principal              = "*"
  function_url_auth_type = "NONE"
}

resource "aws_apigatewayv2_api" "api" {
  count         = local.http_api ? 1 : 0
  name          = var.name
  protocol_type = "HTTP"
  # The default endpoint stays open only without a custom domain.
  disable_execute_api_endpoint = var.custom_domain != null
  tags                         = local.tags
}

resource "aws_apigatewayv2_integration" "api" {
  count                  = local.http_api ? 1 : 0
  api_id                 = aws_apigatewayv2_api.api[0].id
  integration_type       = "AWS_PROXY"
  integration_uri        = aws_lambda_function.function["api"].invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = 30000
}

resource "aws_apigatewayv2_route" "api" {
  #checkov:skip=CKV_AWS_309:Registry clients authenticate to berth itself (basic auth, Docker registry tokens), which no API Gateway authorizer understands.
  count              = local.http_api ? 1 : 0
  api_id             = aws_apigatewayv2_api.api[0].id
  route_key          = "$default"
  target             = "integrations/${aws_apigatewayv2_integration.api[0].id}"
  authorization_type = "NONE"
}

resource "aws_cloudwatch_log_group" "api_access" {
  count             = local.http_api ? 1 : 0
  name              = "/aws/apigateway/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.berth.arn
  tags              = local.tags
}

resource "aws_apigatewayv2_stage" "api" {
  count       = local.http_api ? 1 : 0
  api_id      = aws_apigatewayv2_api.api[0].id
  name        = "$default"
  auto_deploy = true
  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api_access[0].arn
    format = jsonencode({
      requestId = "$context.requestId", ip = "$context.identity.sourceIp", method = "$context.httpMethod",
      path      = "$context.path", status = "$context.status", bytes = "$context.responseLength",
      latency   = "$context.integrationLatency", error = "$context.integrationErrorMessage"
    })
  }
  default_route_settings {
    throttling_burst_limit = 5000
    throttling_rate_limit  = 10000
  }
  tags = local.tags
}

resource "aws_lambda_permission" "http_api" {
  count         = local.http_api ? 1 : 0
  statement_id  = "HttpApi"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function["api"].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.api[0].execution_arn}/*"
}

resource "aws_apigatewayv2_domain_name" "api" {
  count       = local.http_api && var.custom_domain != null ? 1 : 0
  domain_name = var.custom_domain.domain_name
  domain_name_configuration {
    certificate_arn = var.custom_domain.certificate_arn
    endpoint_type   = "REGIONAL"
    security_policy = "TLS_1_2"
  }
  tags = local.tags
}

resource "aws_apigatewayv2_api_mapping" "api" {
  count       = local.http_api && var.custom_domain != null ? 1 : 0
  api_id      = aws_apigatewayv2_api.api[0].id
  domain_name = aws_apigatewayv2_domain_name.api[0].id
  stage       = aws_apigatewayv2_stage.api[0].id
}

resource "aws_route53_record" "api" {
  count   = local.http_api && try(var.custom_domain.zone_id, null) != null ? 1 : 0
  zone_id = var.custom_domain.zone_id
  name    = var.custom_domain.domain_name
  type    = "A"
  alias {
    name                   = aws_apigatewayv2_domain_name.api[0].domain_name_configuration[0].target_domain_name
    zone_id                = aws_apigatewayv2_domain_name.api[0].domain_name_configuration[0].hosted_zone_id
    evaluate_target_health = false
  }
}

locals {
  registry_url = (local.function_url
    ? trimsuffix(aws_lambda_function_url.api[0].function_url, "/")
  : (var.custom_domain != null ? "https://${var.custom_domain.domain_name}" : aws_apigatewayv2_stage.api[0].invoke_url))
}
