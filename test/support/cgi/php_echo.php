<?php
// A PHP upstream for the built-in server (php -S): it answers with what an application would
// read ($_SERVER's HTTP_* keys, $_GET, $_REQUEST, $_COOKIE, the Basic user name PHP decodes) and
// appends the same to SEEN_FILE.
$http = [];
foreach ($_SERVER as $key => $value) {
    if (str_starts_with($key, 'HTTP_')) $http[$key] = $value;
}
$record = ['path' => parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH), 'get' => $_GET, 'request' => $_REQUEST, 'cookie' => $_COOKIE, 'http' => $http, 'auth_user' => $_SERVER['PHP_AUTH_USER'] ?? null];
file_put_contents(getenv('SEEN_FILE'), json_encode($record) . "\n", FILE_APPEND | LOCK_EX);
header('Content-Type: application/json');
echo json_encode($record);
