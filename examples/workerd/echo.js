// echo.js: the local service the producer's subrequests go to.
export default {
  async fetch(request) {
    const url = new URL(request.url);
    return new Response(`echo ${url.pathname}${url.search}\n`, {
      headers: { "content-type": "text/plain" },
    });
  },
};
