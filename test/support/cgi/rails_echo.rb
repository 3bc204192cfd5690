# A Rails upstream (ActionPack routing and controller on Rack, served by WEBrick): it answers with
# what a Rails controller would read (params, which merge the path, the query and a form or JSON
# body; the Rack environment's HTTP_* keys; the routed path and format) and appends the same to the
# file named by SEEN_FILE, so a test can tell what arrived. Prints its port.
require 'action_dispatch'
require 'action_controller'
require 'rack'
require 'webrick'
require 'json'

SEEN = ENV.fetch('SEEN_FILE')

class EchoController < ActionController::API
  def show
    record = {
      path: request.path,
      params: params.to_unsafe_h.except('controller', 'action'),
      format: params[:format],
      http: request.env.select { |key, _| key.start_with?('HTTP_') },
    }
    File.open(SEEN, 'a') { |f| f.puts(record.to_json) }
    render json: record
  end
end

ROUTES = ActionDispatch::Routing::RouteSet.new
ROUTES.draw do
  match '/v1/Account/:account_id/Call' => 'echo#show', via: :all
  match '/v1/Account/:account_id' => 'echo#show', via: :all
  match '*rest' => 'echo#show', via: :all, format: false
end

quiet = WEBrick::Log.new(File::NULL, 0)
Rack::Handler::WEBrick.run(ROUTES, Host: '127.0.0.1', Port: 0, AccessLog: [], Logger: quiet) do |server|
  $stdout.puts server.listeners.first.addr[1]
  $stdout.flush
end
