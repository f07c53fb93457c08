# The optional upload host (var.upload_host): the berth image running
# `berth serve --role upload` on ECS Fargate behind an HTTPS load balancer.
# It serves only the blob-upload endpoints and streams PATCH/PUT bytes into
# S3 multipart uploads, so stock clients can push layers of any size; the
# api function hands out upload Locations on it (server.upload_base_url).

locals {
  uh = var.upload_host
}

resource "aws_cloudwatch_log_group" "upload" {
  count             = local.upload_host ? 1 : 0
  name              = "/ecs/${var.name}-upload"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.berth.arn
  tags              = local.tags
}

resource "aws_ecs_cluster" "upload" {
  count = local.upload_host ? 1 : 0
  name  = "${var.name}-upload"
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
  tags = local.tags
}

data "aws_iam_policy_document" "ecs_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

# Starts the task: pulls the image, writes the logs, and reads the token
# key when it comes from a secret (var.token_key_secret_arn).
resource "aws_iam_role" "upload_execution" {
  count              = local.upload_host ? 1 : 0
  name               = "${var.name}-upload-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_assume.json
  tags               = local.tags
}

resource "aws_iam_role_policy_attachment" "upload_execution" {
  count      = local.upload_host ? 1 : 0
  role       = aws_iam_role.upload_execution[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

resource "aws_iam_role_policy" "upload_execution" {
  count = local.upload_host && var.token_key_secret_arn != null ? 1 : 0
  name  = "token-key"
  role  = aws_iam_role.upload_execution[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      { Effect = "Allow", Action = ["secretsmanager:GetSecretValue"], Resource = [var.token_key_secret_arn] },
      { Effect = "Allow", Action = ["kms:Decrypt"], Resource = [aws_kms_key.berth.arn] },
    ]
  })
}

# What berth itself does in the task: the same data access as the functions.
resource "aws_iam_role" "upload_task" {
  count              = local.upload_host ? 1 : 0
  name               = "${var.name}-upload-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_assume.json
  tags               = local.tags
}

resource "aws_iam_role_policy" "upload_task" {
  count  = local.upload_host ? 1 : 0
  name   = "berth"
  role   = aws_iam_role.upload_task[0].id
  policy = data.aws_iam_policy_document.data_access.json
}

resource "aws_ecs_task_definition" "upload" {
  count                    = local.upload_host ? 1 : 0
  family                   = "${var.name}-upload"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = local.uh.cpu
  memory                   = local.uh.memory_mb
  execution_role_arn       = aws_iam_role.upload_execution[0].arn
  task_role_arn            = aws_iam_role.upload_task[0].arn
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.lambda_architecture == "arm64" ? "ARM64" : "X86_64"
  }
  container_definitions = jsonencode([{
    name                   = "berth"
    image                  = local.uh.image
    essential              = true
    user                   = "65532:65532"
    readonlyRootFilesystem = true
    command                = ["serve", "--role", "upload", "--backend", "aws"]
    portMappings           = [{ containerPort = 5000, protocol = "tcp" }]
    environment = [for k, v in merge(local.berth_env, {
      BERTH_SERVER_LISTEN = "0.0.0.0:5000"
      AWS_REGION          = local.region
    }) : { name = k, value = v }]
    secrets = var.token_key_secret_arn == null ? [] : [{ name = "BERTH_AUTH_TOKEN_KEY", valueFrom = var.token_key_secret_arn }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.upload[0].name
        awslogs-region        = local.region
        awslogs-stream-prefix = "upload"
      }
    }
  }])
  tags = local.tags
}

resource "aws_security_group" "upload_lb" {
  count       = local.upload_host ? 1 : 0
  name        = "${var.name}-upload-lb"
  description = "berth upload host load balancer: HTTPS from clients"
  vpc_id      = local.uh.vpc_id
  tags        = local.tags
}

resource "aws_security_group" "upload_task" {
  count       = local.upload_host ? 1 : 0
  name        = "${var.name}-upload-task"
  description = "berth upload host tasks: from the load balancer; HTTPS to AWS APIs"
  vpc_id      = local.uh.vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "upload_lb_https" {
  for_each          = local.upload_host ? toset(local.uh.ingress_cidrs) : toset([])
  security_group_id = aws_security_group.upload_lb[0].id
  description       = "HTTPS from registry clients"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "upload_lb_to_tasks" {
  count                        = local.upload_host ? 1 : 0
  security_group_id            = aws_security_group.upload_lb[0].id
  description                  = "To the berth tasks"
  ip_protocol                  = "tcp"
  from_port                    = 5000
  to_port                      = 5000
  referenced_security_group_id = aws_security_group.upload_task[0].id
}

resource "aws_vpc_security_group_ingress_rule" "upload_task_from_lb" {
  count                        = local.upload_host ? 1 : 0
  security_group_id            = aws_security_group.upload_task[0].id
  description                  = "From the load balancer"
  ip_protocol                  = "tcp"
  from_port                    = 5000
  to_port                      = 5000
  referenced_security_group_id = aws_security_group.upload_lb[0].id
}

resource "aws_vpc_security_group_egress_rule" "upload_task_https" {
  count             = local.upload_host ? 1 : 0
  security_group_id = aws_security_group.upload_task[0].id
  description       = "HTTPS to S3, DynamoDB, SQS, Secrets Manager, ECR and CloudWatch (through NAT or VPC endpoints)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_lb" "upload" {
  #checkov:skip=CKV_AWS_91:Access logs need a log bucket with an ELB delivery policy that the operator chooses; berth logs every request itself.
  #checkov:skip=CKV2_AWS_28:The upload host takes authenticated blob bytes only (every request is checked by berth); a WAF cannot inspect multi-GiB bodies and stays the operator's choice.
  count                      = local.upload_host ? 1 : 0
  name                       = "${var.name}-upload"
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = local.uh.public_subnet_ids
  security_groups            = [aws_security_group.upload_lb[0].id]
  drop_invalid_header_fields = true
  enable_deletion_protection = true
  # A layer streams for minutes; the timeout only cuts idle connections.
  idle_timeout = 300
  tags         = local.tags
}

resource "aws_lb_target_group" "upload" {
  #checkov:skip=CKV_AWS_378:TLS ends at the load balancer; the hop to the task stays inside the VPC, between two security groups that admit only each other.
  count       = local.upload_host ? 1 : 0
  name        = "${var.name}-upload"
  port        = 5000
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = local.uh.vpc_id
  health_check {
    path                = "/ready"
    matcher             = "200"
    interval            = 15
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
  deregistration_delay = 60
  tags                 = local.tags
}

resource "aws_lb_listener" "upload" {
  count             = local.upload_host ? 1 : 0
  load_balancer_arn = aws_lb.upload[0].arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = local.uh.certificate_arn
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.upload[0].arn
  }
  tags = local.tags
}

resource "aws_ecs_service" "upload" {
  count            = local.upload_host ? 1 : 0
  name             = "${var.name}-upload"
  cluster          = aws_ecs_cluster.upload[0].id
  task_definition  = aws_ecs_task_definition.upload[0].arn
  desired_count    = local.uh.desired_count
  launch_type      = "FARGATE"
  platform_version = "LATEST"
  network_configuration {
    subnets          = local.uh.private_subnet_ids
    security_groups  = [aws_security_group.upload_task[0].id]
    assign_public_ip = false
  }
  load_balancer {
    target_group_arn = aws_lb_target_group.upload[0].arn
    container_name   = "berth"
    container_port   = 5000
  }
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
  depends_on = [aws_lb_listener.upload]
  tags       = local.tags
}

resource "aws_cloudwatch_metric_alarm" "upload_unhealthy" {
  count               = local.upload_host ? 1 : 0
  alarm_name          = "${var.name}-upload-unhealthy-hosts"
  alarm_description   = "An upload host task fails its /ready check."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "UnHealthyHostCount"
  dimensions          = { LoadBalancer = aws_lb.upload[0].arn_suffix, TargetGroup = aws_lb_target_group.upload[0].arn_suffix }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  tags                = local.tags
}
